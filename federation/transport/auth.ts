// HELLO authentication: the token verified against the store, bound to the client id it first spoke
// for (bindings one after another, so two tokens racing for one new identity cannot both take it), and
// read again for a revocation meanwhile and for the operator's grants. Whether the client belongs to
// this federation (model, generator, state) is the round engine's to say, not this module's.
import { ErrorCode, type HelloMessage } from '../../protocol';
import type { FederationStore } from '../store';
import { bindIdentity, verifyToken } from '../tokens';
import type { Connection } from './connection';

/** What a token grants its client beyond joining (the operator's cap on the examples it may claim). */
export interface Grants {
  readonly maxExamples?: number;
}

export type AuthVerdict = { readonly grants: Grants } | { readonly refused: ErrorCode; readonly message: string };

export class TokenAuth {
  /** Token-to-identity bindings, one after another. */
  private bindings: Promise<void> = Promise.resolve();

  /** `requireToken` false: any token is accepted (a local, trusted federation). */
  constructor(
    private readonly store: FederationStore,
    private readonly requireToken: boolean,
  ) {}

  /** Whether `hello`'s token admits its client id; `conn.tokenId` is set once the token is verified. */
  async authenticate(conn: Connection, hello: HelloMessage): Promise<AuthVerdict> {
    if (!this.requireToken) return { grants: {} };
    const tokenId = await verifyToken(this.store, hello.token);
    if (tokenId === null) return { refused: ErrorCode.AuthFailed, message: 'the token is unknown or revoked' };
    // Set before the reads below: a revocation from now on finds this connection (revocation.ts).
    conn.tokenId = tokenId;
    // One binding at a time: two tokens racing for one new identity cannot both take it.
    const binding = this.bindings.then(() => bindIdentity(this.store, tokenId, hello.clientId));
    this.bindings = binding.then(
      () => undefined,
      () => undefined,
    );
    const mismatch = await binding;
    if (mismatch !== null) return { refused: ErrorCode.IdentityMismatch, message: mismatch };
    const record = await this.store.getToken(tokenId);
    // Revoked since it was verified (before this connection could be found by a revocation check).
    if (!record || record.revokedAt !== undefined) return { refused: ErrorCode.AuthFailed, message: `token ${tokenId} was revoked` };
    return { grants: record.maxExamples !== undefined ? { maxExamples: record.maxExamples } : {} };
  }
}
