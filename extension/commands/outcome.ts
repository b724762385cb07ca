// Every command returns an outcome instead of throwing: the user sees a failure as an error message
// with the actions that lead out of it (Select Model…, Open Setting, Set Token…, Retry) and Show Logs,
// and callers (tests, other extensions) can read what happened and what was offered.
import * as vscode from 'vscode';
import { UserFacingError } from '../errors';
import { errorMessage } from '../../protocol/errors';

export type CommandOutcome<T> = { ok: true; value: T } | { ok: false; error: string; actions: string[] };

export async function runCommand<T>(log: vscode.LogOutputChannel, what: string, body: () => Promise<T>): Promise<CommandOutcome<T>> {
  try {
    return { ok: true, value: await body() };
  } catch (err) {
    const message = errorMessage(err);
    const actions = err instanceof UserFacingError ? err.actions : [];
    if (err instanceof UserFacingError) log.warn(`${what}: ${message}`);
    else {
      log.error(`${what} failed: ${message}`);
      // The stack helps a developer, not the user: at debug level.
      if (err instanceof Error && err.stack) log.debug(err.stack);
    }
    const titles = [...actions.map((a) => a.title), 'Show Logs'];
    void vscode.window.showErrorMessage(`FedKSeed: ${what} failed: ${message}`, ...titles).then((choice) => {
      if (choice === 'Show Logs') log.show();
      const action = actions.find((a) => a.title === choice);
      if (action) void vscode.commands.executeCommand(action.command, ...(action.args ?? []));
    });
    return { ok: false, error: message, actions: titles };
  }
}

/** A path argument from a test or another extension: a string or a Uri. */
export function pathArgument(arg: unknown): string | undefined {
  if (typeof arg === 'string' && arg.length > 0) return arg;
  if (arg instanceof vscode.Uri) return arg.fsPath;
  return undefined;
}
