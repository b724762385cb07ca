// Federation commands: connect to a server, leave it, run a local server on 127.0.0.1, and the token.
import * as vscode from 'vscode';
import type { ServerProcessSpec } from '../../contracts/server-process';
import type { FederationResult } from '../../contracts/trainer-rpc';
import { readSettings } from '../config';
import { openSettingAction, UserFacingError } from '../errors';
import type { LocalServerAddress } from '../processes/trainingController';
import { showInfo } from './messages';
import { pathArgument } from './outcome';
import { withRunProgress, type TrainingCommandDeps } from './training';

function checkUrl(url: string): string {
  if (!/^wss?:\/\/[^\s]+$/.test(url))
    throw new UserFacingError(`the federation server URL must start with ws:// or wss://, not "${url}"`, [openSettingAction('server.url')]);
  return url;
}

export async function connectFederation(deps: TrainingCommandDeps, arg: unknown, localServer?: ServerProcessSpec): Promise<FederationResult> {
  const url = checkUrl(pathArgument(arg) ?? readSettings().serverUrl);
  const result = await withRunProgress(`FedKSeed: federation at ${url}`, deps.store, (token) => deps.controller.joinFederation(url, token, { localServer }));
  const figures = deps.store.status.figures;
  const bytes = figures.text.ratio ? `; ${figures.text.total}, ${figures.text.ratio}` : '';
  void showInfo(
    result.stopped
      ? `FedKSeed: left the federation with ${figures.text.progress}${bytes}.`
      : `FedKSeed: the federation finished after round ${result.finalRound}${bytes}.`,
  );
  return result;
}

export async function disconnectFederation({ controller }: TrainingCommandDeps): Promise<boolean> {
  if (controller.busyWith !== 'federation') return false;
  return controller.stop();
}

export async function startLocalServer({ controller }: TrainingCommandDeps): Promise<LocalServerAddress> {
  const started = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'FedKSeed: starting a local federation server' },
    () => controller.startLocalServer(),
  );
  void showInfo(`FedKSeed: federation server listening on ${started.url} (loopback only).`);
  return started;
}

export async function stopLocalServer({ controller }: TrainingCommandDeps): Promise<boolean> {
  return controller.stopLocalServer();
}

/**
 * A local server and this window as its client: the whole federation on one machine. A local server
 * whose federation finished is replaced by a new one with the current settings (never rejoined).
 */
export async function startLocalFederation(deps: TrainingCommandDeps): Promise<FederationResult> {
  const started = await deps.controller.startLocalFederationServer();
  return connectFederation(deps, started.url, deps.controller.localServerSpec);
}

export async function setFederationToken({ controller }: TrainingCommandDeps, arg: unknown): Promise<boolean> {
  const token =
    typeof arg === 'string'
      ? arg
      : await vscode.window.showInputBox({
          title: 'FedKSeed federation token',
          prompt: "The token the federation server gave you. It is kept in VS Code's secret storage, never in settings.",
          password: true,
          ignoreFocusOut: true,
          validateInput: (v) => (v.trim().length === 0 ? 'The token cannot be empty' : /\s/.test(v.trim()) ? 'A token has no spaces' : undefined),
        });
  if (token === undefined) return false;
  if (token.trim().length === 0) throw new UserFacingError('the federation token cannot be empty');
  await controller.setToken(token.trim());
  void showInfo('FedKSeed: federation token saved in secret storage.');
  return true;
}
