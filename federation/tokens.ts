// Access tokens: `fks_<id>_<secret>` with a 128-bit random id and a 256-bit secret. Only
// sha256(salt ‖ secret) is stored; a fast hash suffices because the secret is random, not a password.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { clientIdProblem } from '../protocol/client-id';
import { MAX_CLIENT_ID_BYTES } from '../protocol';
import type { FederationStore, TokenRecord } from './store';

export interface IssuedToken {
  readonly id: string;
  /** The secret token; shown once, never stored. */
  readonly token: string;
}

export interface TokenInfo {
  readonly id: string;
  readonly label: string;
  readonly createdAt: string;
  /** The client identity the token speaks for, once granted or first used. */
  readonly clientId?: string;
  readonly maxExamples?: number;
  /** When it was revoked; its client id stays reserved. */
  readonly revokedAt?: string;
}

/**
 * The token (other than `exceptId`) that holds `clientId`, if any: a live one first, else a revoked one,
 * whose id stays reserved so that no unbound token can take the identity of a revoked client.
 */
async function holderOf(store: FederationStore, clientId: string, exceptId?: string): Promise<TokenRecord | null> {
  const holders = (await store.listTokens()).filter((t) => t.clientId === clientId && t.id !== exceptId);
  return holders.find((t) => t.revokedAt === undefined) ?? holders[0] ?? null;
}

/** In-process listeners of token changes made through tokens.ts, by store (an embedded store is one process's). */
const localWatchers = new WeakMap<FederationStore, Set<(tokenId: string) => void>>();

/**
 * Runs `listener` when a token of `store` changed: through this module in this process, or (a shared
 * store's `watchTokens`) in another; null: tokens may have changed unseen. Returns its removal (local only).
 */
export function watchTokenChanges(store: FederationStore, listener: (tokenId: string | null) => void): () => void {
  const set = localWatchers.get(store) ?? new Set<(tokenId: string) => void>();
  localWatchers.set(store, set);
  set.add(listener);
  store.watchTokens?.(listener);
  return () => void set.delete(listener);
}

function changed(store: FederationStore, tokenId: string): void {
  for (const l of localWatchers.get(store) ?? []) l(tokenId);
}

function hashSecret(salt: string, secret: string): string {
  return createHash('sha256').update(salt, 'hex').update(secret, 'utf8').digest('hex');
}

/**
 * Issues a token; with `clientId` it speaks for that identity only (refused when another token already
 * does), else it takes the identity of its first accepted hello.
 */
export async function createToken(
  store: FederationStore,
  label: string,
  clientId?: string,
  grants: { readonly maxExamples?: number } = {},
): Promise<IssuedToken> {
  if (grants.maxExamples !== undefined && !(Number.isSafeInteger(grants.maxExamples) && grants.maxExamples > 0))
    throw new Error('maxExamples must be a positive integer');
  if (clientId !== undefined) {
    // The ids a HELLO may carry, no others: a token for an id no client can send would never connect.
    const problem = clientIdProblem(clientId);
    if (problem !== null) throw new Error(`${problem}: a client id is 1 to ${MAX_CLIENT_ID_BYTES} bytes of UTF-8 without control characters`);
    // The operator may grant the id of a revoked token to a new one (its reservation is for them to lift).
    const holder = await holderOf(store, clientId);
    if (holder && holder.revokedAt === undefined) throw new Error(`client id ${clientId} belongs to token ${holder.id} (${holder.label}); revoke it first`);
  }
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const salt = randomBytes(16).toString('hex');
  await store.putToken({
    id,
    label,
    salt,
    hash: hashSecret(salt, secret),
    createdAt: new Date().toISOString(),
    ...(clientId === undefined ? {} : { clientId }),
    ...(grants.maxExamples === undefined ? {} : { maxExamples: grants.maxExamples }),
  });
  return { id, token: `fks_${id}_${secret}` };
}

/**
 * Revokes a token: false when the store has none with that id. The record is kept, marked revoked, so
 * its client id stays reserved; a running server closes the sessions it admitted (server.ts).
 */
export async function revokeToken(store: FederationStore, id: string): Promise<boolean> {
  const record = await store.getToken(id);
  if (!record) return false;
  if (record.revokedAt === undefined) await store.putToken({ ...record, revokedAt: new Date().toISOString() });
  changed(store, id);
  return true;
}

export async function listTokens(store: FederationStore): Promise<TokenInfo[]> {
  return (await store.listTokens()).map(({ id, label, createdAt, clientId, maxExamples, revokedAt }: TokenRecord) => ({
    id,
    label,
    createdAt,
    ...(clientId === undefined ? {} : { clientId }),
    ...(maxExamples === undefined ? {} : { maxExamples }),
    ...(revokedAt === undefined ? {} : { revokedAt }),
  }));
}

/** Whether the token `id` still admits its holder (it exists and is not revoked). */
export async function tokenLive(store: FederationStore, id: string): Promise<boolean> {
  const record = await store.getToken(id);
  return record !== null && record.revokedAt === undefined;
}

/** The token's id when it is valid and not revoked, else null. */
export async function verifyToken(store: FederationStore, token: string): Promise<string | null> {
  const m = /^fks_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m) return null;
  const record = await store.getToken(m[1]);
  if (!record || record.revokedAt !== undefined) return null;
  const expected = Buffer.from(record.hash, 'hex');
  const actual = Buffer.from(hashSecret(record.salt, m[2]), 'hex');
  return expected.length === actual.length && timingSafeEqual(expected, actual) ? record.id : null;
}

/**
 * Binds a verified token to the identity its hello claims: null when the token speaks for `clientId`
 * (recording it at the token's first use), else why not. Calls must not overlap (the server runs them
 * one at a time), so two tokens cannot take one identity together.
 */
export async function bindIdentity(store: FederationStore, tokenId: string, clientId: string): Promise<string | null> {
  const record = await store.getToken(tokenId);
  if (!record || record.revokedAt !== undefined) return 'the token is unknown or revoked';
  if (record.clientId !== undefined) {
    return record.clientId === clientId ? null : `token ${tokenId} speaks for client ${record.clientId}, not ${clientId}`;
  }
  const holder = await holderOf(store, clientId, tokenId);
  if (holder)
    return holder.revokedAt === undefined
      ? `client ${clientId} belongs to another token`
      : `client ${clientId} belonged to a revoked token: the id stays reserved`;
  await store.putToken({ ...record, clientId });
  return null;
}
