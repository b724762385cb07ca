// Revocation that ends live sessions: when a token is revoked or gone — a change the store reports
// (tokens.ts), or a `fedkseed tokens revoke` request to the server that holds an embedded store
// (revocation-requests.ts) — the connections its HELLO admitted are refused with AuthFailed. Checks run
// one after another, so a burst of changes reads each token once at a time.
import { ErrorCode } from '../../protocol';
import { errorMessage } from '../../protocol/errors';
import type { Logger } from '../log';
import { serveRevocationRequests, type RevocationOutcome } from '../revocation-requests';
import type { FederationStore } from '../store';
import { revokeToken, tokenLive, watchTokenChanges } from '../tokens';
import type { Connection } from './connection';
import type { ConnectionOutbox } from './outbox';

export interface RevocationParts {
  readonly store: FederationStore;
  readonly connections: Iterable<Connection>;
  readonly outbox: ConnectionOutbox;
  readonly log: Logger;
  /** The embedded store's folder, whose revocation requests this server takes; null for a store given to it. */
  readonly requestsFrom: string | null;
}

/** Watches the store's tokens (and its requests folder) until stopped. */
export function watchRevocations(parts: RevocationParts): { stop(): void } {
  const { store, connections, outbox, log } = parts;
  let stopped = false;
  let checks: Promise<number> = Promise.resolve(0);

  /** Closes the connections admitted by `tokenId` (null: by any token) when it is revoked or gone; how many. */
  function closeRevoked(tokenId: string | null): Promise<number> {
    const check = checks.then(async () => {
      const ids = new Set<string>();
      for (const c of connections) if (c.tokenId !== null && !c.dead && (tokenId === null || c.tokenId === tokenId)) ids.add(c.tokenId);
      let closedNow = 0;
      for (const id of ids) {
        if (await tokenLive(store, id)) continue;
        for (const c of connections) {
          if (c.tokenId !== id || c.dead) continue;
          outbox.refuse(c, ErrorCode.AuthFailed, `token ${id} was revoked`);
          closedNow++;
        }
      }
      if (closedNow > 0) log('info', { event: 'sessions_revoked', tokenId, sessions: closedNow });
      return closedNow;
    });
    checks = check.catch((err: unknown) => {
      log('warn', { event: 'revocation_check_failed', tokenId, error: errorMessage(err) });
      return 0;
    });
    return checks;
  }

  const unwatch = watchTokenChanges(store, (tokenId) => {
    if (!stopped) void closeRevoked(tokenId);
  });
  // An embedded store's folder is this process's alone: `fedkseed tokens revoke` asks through a request file.
  const requests =
    parts.requestsFrom === null
      ? null
      : serveRevocationRequests(
          parts.requestsFrom,
          async (tokenId): Promise<RevocationOutcome> => {
            const live = [...connections].filter((c) => c.tokenId === tokenId && !c.dead).length;
            const revoked = await revokeToken(store, tokenId);
            await closeRevoked(tokenId);
            return { revoked, sessionsClosed: revoked ? live : 0 };
          },
          log,
        );
  return {
    stop() {
      stopped = true;
      unwatch();
      requests?.stop();
    },
  };
}
