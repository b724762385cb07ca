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
}

/** The token (other than `exceptId`) that speaks for `clientId`, if any. */
async function holderOf(store: FederationStore, clientId: string, exceptId?: string): Promise<TokenRecord | null> {
  return (await store.listTokens()).find((t) => t.clientId === clientId && t.id !== exceptId) ?? null;
}

function hashSecret(salt: string, secret: string): string {
  return createHash('sha256').update(salt, 'hex').update(secret, 'utf8').digest('hex');
}

/**
 * Issues a token; with `clientId` it speaks for that identity only (refused when another token already
 * does), else it takes the identity of its first accepted hello.
 */
export async function createToken(store: FederationStore, label: string, clientId?: string, grants: { readonly maxExamples?: number } = {}): Promise<IssuedToken> {
  if (grants.maxExamples !== undefined && !(Number.isSafeInteger(grants.maxExamples) && grants.maxExamples > 0)) throw new Error('maxExamples must be a positive integer');
  if (clientId !== undefined) {
    // The ids a HELLO may carry, no others: a token for an id no client can send would never connect.
    const problem = clientIdProblem(clientId);
    if (problem !== null) throw new Error(`${problem}: a client id is 1 to ${MAX_CLIENT_ID_BYTES} bytes of UTF-8 without control characters`);
    const holder = await holderOf(store, clientId);
    if (holder) throw new Error(`client id ${clientId} belongs to token ${holder.id} (${holder.label}); revoke it first`);
  }
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const salt = randomBytes(16).toString('hex');
  await store.putToken({ id, label, salt, hash: hashSecret(salt, secret), createdAt: new Date().toISOString(), ...(clientId === undefined ? {} : { clientId }), ...(grants.maxExamples === undefined ? {} : { maxExamples: grants.maxExamples }) });
  return { id, token: `fks_${id}_${secret}` };
}

export function revokeToken(store: FederationStore, id: string): Promise<boolean> {
  return store.deleteToken(id);
}

export async function listTokens(store: FederationStore): Promise<TokenInfo[]> {
  return (await store.listTokens()).map(({ id, label, createdAt, clientId, maxExamples }: TokenRecord) => ({ id, label, createdAt, ...(clientId === undefined ? {} : { clientId }), ...(maxExamples === undefined ? {} : { maxExamples }) }));
}

/** The token's id when it is valid and not revoked, else null. */
export async function verifyToken(store: FederationStore, token: string): Promise<string | null> {
  const m = /^fks_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m) return null;
  const record = await store.getToken(m[1]);
  if (!record) return null;
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
  if (!record) return 'the token is unknown or revoked';
  if (record.clientId !== undefined) {
    return record.clientId === clientId ? null : `token ${tokenId} speaks for client ${record.clientId}, not ${clientId}`;
  }
  const holder = await holderOf(store, clientId, tokenId);
  if (holder) return `client ${clientId} belongs to another token`;
  await store.putToken({ ...record, clientId });
  return null;
}
