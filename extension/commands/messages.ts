// The messages the extension shows, each kept as the last one shown (the extension-host tests read it),
// with its details written to the log, so a short notification never hides a figure.
import * as vscode from 'vscode';

let last: string | undefined;

/** The last information or warning message shown. */
export function lastMessage(): string | undefined {
  return last;
}

export function showInfo(text: string, ...actions: string[]): Thenable<string | undefined> {
  last = text;
  return vscode.window.showInformationMessage(text, ...actions);
}

export function showWarning(text: string, ...actions: string[]): Thenable<string | undefined> {
  last = text;
  return vscode.window.showWarningMessage(text, ...actions);
}
