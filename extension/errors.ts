// Failures the user can act on: the message is shown as is, with the actions that lead out of it
// (Select Model…, Open Setting, Set Token…, Retry), and Show Logs always last.
import * as vscode from 'vscode';
import { CONFIG_SECTION } from './config';

/** A button on an error message: runs `command` with `args`. */
export interface ErrorAction {
  readonly title: string;
  readonly command: string;
  readonly args?: readonly unknown[];
}

/** A failure the user can act on; its message is shown as is, with its actions. */
export class UserFacingError extends Error {
  constructor(
    message: string,
    readonly actions: readonly ErrorAction[] = [],
  ) {
    super(message);
    this.name = 'UserFacingError';
  }
}

/** Where a setting's value comes from, as the Settings editor's tabs name it. */
export function settingOrigin(key: string): string {
  const inspected = vscode.workspace.getConfiguration(CONFIG_SECTION).inspect(key);
  if (inspected?.workspaceFolderValue !== undefined) return 'Folder settings';
  if (inspected?.workspaceValue !== undefined) return 'Workspace settings';
  if (inspected?.globalValue !== undefined) return 'User settings';
  return 'the default';
}

/** The Settings editor's command for each tab a value can come from (each takes `{ query }`). */
const openSettingsCommand: Record<string, string> = {
  'Folder settings': 'workbench.action.openFolderSettings',
  'Workspace settings': 'workbench.action.openWorkspaceSettings',
  'User settings': 'workbench.action.openGlobalSettings',
};

/** Opens the Settings editor on the setting, in the tab (User, Workspace, Folder) where its value is set. */
export function openSettingAction(key: string): ErrorAction {
  const command = openSettingsCommand[settingOrigin(key)] ?? 'workbench.action.openSettings';
  return { title: 'Open Setting', command, args: [{ query: `${CONFIG_SECTION}.${key}` }] };
}

/** An error caused by a setting's value: names the setting and where it is set, offers to open it (and `actions` first). */
export function settingError(key: string, message: string, actions: readonly ErrorAction[] = []): UserFacingError {
  return new UserFacingError(`${message} (${CONFIG_SECTION}.${key}, set in ${settingOrigin(key)})`, [...actions, openSettingAction(key)]);
}
