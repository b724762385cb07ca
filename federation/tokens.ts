// Access tokens: `fks_<id>_<secret>` with a 128-bit random id and a 256-bit secret. Only
// sha256(salt ‖ secret) is stored; a fast hash suffices because the secret is random, not a password.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
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
}

function hashSecret(salt: string, secret: string): string {
  return createHash('sha256').update(salt, 'hex').update(secret, 'utf8').digest('hex');
}

export async function createToken(store: FederationStore, label: string): Promise<IssuedToken> {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const salt = randomBytes(16).toString('hex');
  await store.putToken({ id, label, salt, hash: hashSecret(salt, secret), createdAt: new Date().toISOString() });
  return { id, token: `fks_${id}_${secret}` };
}

export function revokeToken(store: FederationStore, id: string): Promise<boolean> {
  return store.deleteToken(id);
}

export async function listTokens(store: FederationStore): Promise<TokenInfo[]> {
  return (await store.listTokens()).map(({ id, label, createdAt }: TokenRecord) => ({ id, label, createdAt }));
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
