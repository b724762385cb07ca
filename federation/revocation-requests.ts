// Revoking a token of an embedded (LevelDB) store while its server runs. The server holds the folder's
// lock, so no other process can write the store: `fedkseed tokens revoke` leaves a request file in
// <store>/revocations/, the server that holds the store takes it within REQUEST_POLL_MS, revokes the
// token through its own store, closes the sessions the token admitted, and answers with a result file
// the command reads and removes. Files are written under a temporary name and renamed, so neither side
// reads half of one. Whoever may write the store's folder may revoke; nothing else is read from it.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from './log';
import { errorMessage } from '../protocol/errors';

export const REQUESTS_FOLDER = 'revocations';
/** How often a server looks for requests: a revocation takes effect within this (plus the closing). */
export const REQUEST_POLL_MS = 100;
/** How long `tokens revoke` waits for a running server's answer before it says none came. */
export const ANSWER_TIMEOUT_MS = 5000;

const TOKEN_ID = /^[0-9a-f]{16}$/;
const REQUEST = /^([0-9a-f]{16})-[0-9a-f]{16}\.request$/;

export interface RevocationOutcome {
  /** False: the store holds no token with that id. */
  readonly revoked: boolean;
  /** Live sessions of the token the server closed. */
  readonly sessionsClosed: number;
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

function outcomeOf(text: string): RevocationOutcome | null {
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null) return null;
    const { revoked, sessionsClosed } = v as Record<string, unknown>;
    return typeof revoked === 'boolean' && typeof sessionsClosed === 'number' ? { revoked, sessionsClosed } : null;
  } catch {
    return null;
  }
}

/**
 * Asks the server that holds the store at `storePath` to revoke `tokenId`: its answer, or null when none
 * came within `timeoutMs` (no server took the request; it is withdrawn).
 */
export async function requestRevocation(storePath: string, tokenId: string, timeoutMs = ANSWER_TIMEOUT_MS): Promise<RevocationOutcome | null> {
  if (!TOKEN_ID.test(tokenId)) throw new Error(`${tokenId} is not a token id (16 hex digits)`);
  const dir = join(storePath, REQUESTS_FOLDER);
  mkdirSync(dir, { recursive: true });
  const name = `${tokenId}-${randomBytes(8).toString('hex')}`;
  const request = join(dir, `${name}.request`);
  const result = join(dir, `${name}.result`);
  await writeAtomically(request, JSON.stringify({ tokenId }));
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const text = await readFile(result, 'utf8').catch(() => null);
    if (text !== null) {
      await rm(result, { force: true });
      return outcomeOf(text);
    }
    await new Promise((resolve) => setTimeout(resolve, REQUEST_POLL_MS / 2));
  }
  await rm(request, { force: true });
  return null;
}

/** Takes the requests left in `storePath` (each once, in turn) until stopped. */
export function serveRevocationRequests(storePath: string, revoke: (tokenId: string) => Promise<RevocationOutcome>, log: Logger): { stop(): void } {
  const dir = join(storePath, REQUESTS_FOLDER);
  let busy = false;
  let stopped = false;
  async function sweep(): Promise<void> {
    if (!existsSync(dir)) return;
    for (const file of await readdir(dir)) {
      const m = REQUEST.exec(file);
      if (!m || stopped) continue;
      const request = join(dir, file);
      const outcome = await revoke(m[1]);
      await writeAtomically(join(dir, file.replace(/\.request$/, '.result')), JSON.stringify(outcome));
      await rm(request, { force: true });
      log('info', { event: 'token_revoked', tokenId: m[1], revoked: outcome.revoked, sessionsClosed: outcome.sessionsClosed, by: 'request' });
    }
  }
  const timer = setInterval(() => {
    if (busy || stopped) return;
    busy = true;
    sweep()
      .catch((err: unknown) => log('warn', { event: 'revocation_request_failed', error: errorMessage(err) }))
      .finally(() => {
        busy = false;
      });
  }, REQUEST_POLL_MS);
  timer.unref();
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
