// What Start will use, in words for the sidebar: the model and the data the settings name now (the
// bundled model, the workspace folder by default), each with where it is set. Sent to the sidebar when
// it is ready and whenever a model or data setting, or the workspace's folders, change.
import { existsSync, statSync } from 'node:fs';
import { basename, relative, sep } from 'node:path';
import * as vscode from 'vscode';
import type { SetupView } from '../../contracts/webview-messages';
import { CONFIG_SECTION, readSettings } from '../config';
import { settingOrigin } from '../errors';
import { modelDisplayName } from '../modelName';

/** "set in Workspace settings", or "the default". */
function origin(key: string): string {
  const where = settingOrigin(key);
  return where === 'the default' ? 'the default' : `set in ${where}`;
}

/** A path as the user would write it: relative to the workspace folder when inside it. */
function shown(path: string): string {
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (!root) return path;
  const rel = relative(root, path);
  return rel === '' ? basename(root) : rel.startsWith('..') || rel.startsWith(sep) ? path : rel;
}

export function setupView(): SetupView {
  const s = readSettings();
  const config = vscode.workspace.getConfiguration(CONFIG_SECTION);
  const model = s.engine.model;
  const variant = config.get<string>('model.variant', '').trim();
  const modelView: SetupView['model'] = model
    ? {
        name: `${modelDisplayName(model)}${variant ? ` (${variant})` : ''}`,
        detail: `${existsSync(model) ? shown(model) : model} · ${origin('model.path')}`,
      }
    : { name: 'tiny-code-lm (bundled)', detail: 'the model that comes with FedKSeed · the default' };
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const dataPath = s.data.path;
  let data: SetupView['data'] = null;
  if (dataPath) {
    const isFolder = existsSync(dataPath) && statSync(dataPath).isDirectory();
    const what = !existsSync(dataPath)
      ? 'not found'
      : isFolder
        ? s.data.include.length > 0
          ? `its files matching ${s.data.include.join(', ')}`
          : 'its text and code files'
        : /\.(jsonl|ndjson|json)$/i.test(dataPath)
          ? 'a JSONL/JSON dataset'
          : 'a text file';
    const name = dataPath === root ? `${basename(dataPath)} (the workspace folder)` : isFolder ? `${shown(dataPath)}/` : shown(dataPath);
    data = { name, detail: `${what} · ${origin('data.path')}` };
  }
  return { model: modelView, data };
}

/** Settings and events that change what Start uses. */
export function affectsSetup(e: vscode.ConfigurationChangeEvent): boolean {
  return ['model.path', 'model.variant', 'data.path', 'data.include'].some((key) => e.affectsConfiguration(`${CONFIG_SECTION}.${key}`));
}
