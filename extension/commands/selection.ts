// "Select Model" and "Select Dataset": a file picker (or a path argument), a check that names the
// missing path, and the choice saved in settings (workspace settings when a folder is open).
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as vscode from 'vscode';
import { CONFIG_SECTION } from '../config';
import { UserFacingError } from '../processes/trainingController';
import { pathArgument } from './outcome';

function settingsTarget(): vscode.ConfigurationTarget {
  return vscode.workspace.workspaceFolders?.length ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
}

export async function selectModel(arg: unknown): Promise<string | undefined> {
  let path = pathArgument(arg);
  if (!path) {
    const picked = await vscode.window.showOpenDialog({
      title: 'Select an ONNX causal language model',
      canSelectMany: false,
      canSelectFiles: true,
      canSelectFolders: false,
      filters: { 'ONNX model': ['onnx'] },
      openLabel: 'Use Model',
    });
    if (!picked?.[0]) return undefined;
    path = picked[0].fsPath;
  }
  if (!existsSync(path)) throw new UserFacingError(`model file not found: ${path}`);
  if (statSync(path).isDirectory()) {
    if (!existsSync(join(path, 'model.onnx'))) throw new UserFacingError(`${path} is a folder without model.onnx`);
  } else if (!path.endsWith('.onnx')) {
    throw new UserFacingError(`${path} is not an .onnx file`);
  }
  const tokenizer = join(statSync(path).isDirectory() ? path : dirname(path), 'tokenizer.json');
  const configuredTokenizer = vscode.workspace.getConfiguration(CONFIG_SECTION).get<string>('model.tokenizerPath', '');
  if (!configuredTokenizer && !existsSync(tokenizer)) {
    throw new UserFacingError(`no tokenizer.json beside ${path}: put the model's tokenizer there or set fedkseed.model.tokenizerPath`);
  }
  await vscode.workspace.getConfiguration(CONFIG_SECTION).update('model.path', path, settingsTarget());
  return path;
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
