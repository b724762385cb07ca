// What the trainer's and the server's failures become for the user: JSON-RPC errors and the server's
// start failures carry the process's own message (e.g. "model file not found: /path"), and a federation
// that cannot be reached comes with the actions that lead out of it.
import { ResponseError } from 'vscode-jsonrpc/node';
import { connectionFailureSchema, parsePayload, TrainerErrorCodes, type ConnectionFailure } from '../../contracts/trainer-rpc';
import { openSettingAction, UserFacingError, type ErrorAction } from '../errors';
import { ServerStartError } from './serverProcess';

/** What the user can do when a federation cannot be reached, by cause. */
function connectionActions(failure: ConnectionFailure): ErrorAction[] {
  const retry: ErrorAction = { title: 'Retry', command: 'fedkseed.connectFederation', args: [failure.url] };
  if (failure.cause === 'auth') return [{ title: 'Set Token…', command: 'fedkseed.setFederationToken' }, retry];
  return [openSettingAction('server.url'), retry];
}

export function unwrap(err: unknown): Error {
  if (err instanceof ResponseError && err.code === TrainerErrorCodes.connectionFailed) {
    const failure = parsePayload(connectionFailureSchema, err.data);
    return new UserFacingError(err.message, failure.ok ? connectionActions(failure.value) : []);
  }
  if (err instanceof ResponseError) return new UserFacingError(err.message);
  if (err instanceof ServerStartError) {
    // The server names a taken port; say where its port comes from.
    return new UserFacingError(err.addressInUse ? `${err.message}: choose another fedkseed.localServer.port, or 0 for any free port` : err.message);
  }
  return err instanceof Error ? err : new Error(String(err));
}
