// "Select Model" and "Select Dataset": a picker (or a path argument), a check that names what is missing,
// and the choice saved in settings (workspace settings when a folder is open). A model may be an .onnx
// file, a model folder or a model of the Hugging Face cache, with a variant (docs/models.md).
import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { cachedModelIds, locateModel, type LocatedModel } from '../../contracts/node/model-location';
import { CONFIG_SECTION } from '../config';
import { UserFacingError } from '../processes/trainingController';
import { pathArgument } from './outcome';
import { errorMessage } from '../../protocol/errors';

function settingsTarget(): vscode.ConfigurationTarget {
  return vscode.workspace.workspaceFolders?.length ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
}

type ModelPick = vscode.QuickPickItem & { readonly source: 'file' | 'folder' | 'id'; readonly id?: string };

/** Asks where the model is: an .onnx file, a model folder, or a model of the Hugging Face cache. */
async function pickModel(): Promise<string | undefined> {
  const items: ModelPick[] = [
    { label: '$(file) ONNX file…', detail: 'an .onnx causal language model', source: 'file' },
    {
      label: '$(folder) Model folder…',
      detail: 'an Optimum export, a transformers.js repository (onnx/model*.onnx) or a Hugging Face cache folder',
      source: 'folder',
    },
    ...cachedModelIds().map((id): ModelPick => ({ label: `$(database) ${id}`, description: 'Hugging Face cache', source: 'id', id })),
  ];
  const choice = await vscode.window.showQuickPick(items, {
    title: 'Select a model',
    placeHolder: 'A file, a folder, or a model already in the Hugging Face cache',
  });
  if (!choice) return undefined;
  if (choice.source === 'id') return choice.id;
  const picked = await vscode.window.showOpenDialog({
    title: choice.source === 'file' ? 'Select an ONNX causal language model' : 'Select a model folder',
    canSelectMany: false,
    canSelectFiles: choice.source === 'file',
    canSelectFolders: choice.source === 'folder',
    ...(choice.source === 'file' ? { filters: { 'ONNX model': ['onnx'] } } : {}),
    openLabel: 'Use Model',
  });
  return picked?.[0]?.fsPath;
}

/** Asks which file of a folder with several variants (fp32, fp16, q4, …); '' keeps the default. */
async function pickVariant(located: LocatedModel): Promise<string | undefined> {
  const variants = [...new Set(located.choices.map((c) => c.variant))];
  if (variants.length < 2) return '';
  const items = variants.map((v) => ({
    label: v,
    description: v === located.variant ? 'default' : '',
    detail: located.choices
      .filter((c) => c.variant === v)
      .map((c) => basename(c.file))
      .join(', '),
  }));
  const choice = await vscode.window.showQuickPick(items, { title: 'Which variant of the model?' });
  if (!choice) return undefined;
  return choice.label === located.variant ? '' : choice.label;
}

/**
 * Select Model: a path or org/name argument, or the pickers. The choice is checked the way the trainer
 * will read it (contracts/model-location.ts) and saved with its variant.
 */
export async function selectModel(arg: unknown): Promise<string | undefined> {
  const given = pathArgument(arg);
  const spec = given ?? (await pickModel());
  if (!spec) return undefined;
  if (existsSync(spec) && !statSync(spec).isDirectory() && !spec.endsWith('.onnx')) throw new UserFacingError(`${spec} is not an .onnx file`);
  const configuredTokenizer = vscode.workspace.getConfiguration(CONFIG_SECTION).get<string>('model.tokenizerPath', '');
  let located: LocatedModel;
  try {
    located = locateModel(spec);
  } catch (e) {
    throw new UserFacingError(errorMessage(e));
  }
  if (!configuredTokenizer && !located.tokenizer) {
    throw new UserFacingError(
      `no tokenizer.json for ${spec} (looked beside ${basename(located.model)} and at ${located.root}): put the model's tokenizer there or set fedkseed.model.tokenizerPath`,
    );
  }
  // An argument (a command link, a test) takes the default variant; the picker asks.
  const variant = given ? '' : await pickVariant(located);
  if (variant === undefined) return undefined;
  const config = vscode.workspace.getConfiguration(CONFIG_SECTION);
  await config.update('model.path', spec, settingsTarget());
  await config.update('model.variant', variant, settingsTarget());
  return spec;
}

export async function selectDataset(arg: unknown): Promise<string | undefined> {
  let path = pathArgument(arg);
  if (!path) {
    const picked = await vscode.window.showOpenDialog({
      title: 'Select a dataset: a JSONL/JSON file or a folder of text and code',
      canSelectMany: false,
      canSelectFiles: true,
      canSelectFolders: true,
      filters: { Datasets: ['jsonl', 'ndjson', 'json', 'txt', 'md'], 'All files': ['*'] },
      openLabel: 'Use Dataset',
    });
    if (!picked?.[0]) return undefined;
    path = picked[0].fsPath;
  }
  if (!existsSync(path)) throw new UserFacingError(`dataset not found: ${path}`);
  await vscode.workspace.getConfiguration(CONFIG_SECTION).update('data.path', path, settingsTarget());
  return path;
}
