// Every command returns an outcome instead of throwing: the user sees failures as an error message
// with a "Show Logs" action, and callers (tests, other extensions) can read what happened.
import * as vscode from 'vscode';
import { UserFacingError } from '../processes/trainingController';

export type CommandOutcome<T> = { ok: true; value: T } | { ok: false; error: string };

export async function runCommand<T>(log: vscode.LogOutputChannel, what: string, body: () => Promise<T>): Promise<CommandOutcome<T>> {
  try {
    return { ok: true, value: await body() };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (!(err instanceof UserFacingError)) log.error(`${what} failed: ${err instanceof Error ? (err.stack ?? message) : message}`);
    else log.warn(`${what}: ${message}`);
    void vscode.window.showErrorMessage(`FedKSeed: ${what} failed: ${message}`, 'Show Logs').then((choice) => {
      if (choice === 'Show Logs') log.show();
    });
    return { ok: false, error: message };
  }
}

/** A path argument from a test or another extension: a string or a Uri. */
export function pathArgument(arg: unknown): string | undefined {
  if (typeof arg === 'string' && arg.length > 0) return arg;
  if (arg instanceof vscode.Uri) return arg.fsPath;
  return undefined;
}
