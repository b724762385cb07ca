// The server's durable state behind a small interface: the round engine (round-engine.ts) and the
// transport's token checks see only this, so the embedded LevelDB store (level-store.ts) and the shared
// PostgreSQL one (pg-store.ts) replace each other. A round is committed with one atomic, synced write:
// after it returns, the round survives kill -9. The open round (its clients, its uploads) and which
// clients are connected live here too, so several gateways on one shared store serve one federation:
// one of them, the coordinator, opens and commits rounds; every gateway follows what the store says.
import type { FederationConfig } from '../protocol';
import type { RoundStatistics } from './robust';

/** Entries of a K-vector, indices ascending. */
export interface SparseValues {
  readonly indices: Uint32Array;
  readonly values: Float64Array;
}

/** The entries of the state's residual and importance a round changed, with their values after it. */
export interface RoundAfter {
  readonly residual: SparseValues;
  readonly importanceSum: SparseValues;
  readonly importanceCount: SparseValues;
  /**
   * The round's statistics of |g| and example claims (robust.ts): the history later rounds' bounds are
   * medians of. Absent in a round committed before they were kept.
   */
  readonly robust?: RoundStatistics;
  /**
   * The key the round's clients were sampled with (sampling.ts, hex: HMAC of the server's secret, the
   * round and the attempt that committed), so the sample is reproduced from the record. Absent in a
   * round committed before the sample was keyed.
   */
  readonly sampling?: string;
}

/** Hex SHA-256 of this record and of the record before it ('' for round 1 or a record without a hash). */
export interface RoundLink {
  readonly prev: string;
  readonly hash: string;
}

/** The state's seal, hex SHA-256s: its last record's hash, each vector's checksum, and one over all of it and the round. */
export interface StateSeal {
  readonly head: string;
  readonly coefficients: string;
  readonly residual: string;
  readonly importanceSum: string;
  readonly importanceCount: string;
  readonly header: string;
}

/** Everything the next round needs; vectors have K entries. */
export interface FederationState {
  /** Last committed round (0: none). */
  readonly round: number;
  /** C ∈ ℤ^K in units of 2^-16 (exact integers held in float64). */
  readonly coefficients: Float64Array;
  /** Error-feedback remainder of the quantized changes, same units, not yet in C. */
  readonly residual: Float64Array;
  /** Pro importance as running sums of |clip(g)| and counts. */
  readonly importanceSum: Float64Array;
  readonly importanceCount: Float64Array;
  /** Its last record's hash and its vectors' checksums (record-chain.ts): set by the store; absent in a store written before them. */
  readonly seal?: StateSeal;
}

export interface RoundRecord {
  readonly round: number;
  /** Integer ΔC of this round (units of 2^-16). */
  readonly change: Float64Array;
  readonly participants: readonly string[];
  readonly examples: number;
  readonly lossBefore: number;
  readonly lossAfter: number;
  readonly committedAt: string;
  /**
   * The residual and importance entries the round changed, as they were after it (record-chain.ts): the
   * store derives it at commit when absent; null for a round whose history is unknown (written before it was kept).
   */
  readonly after?: RoundAfter | null;
  /** Its hash and its predecessor's: set by the store; absent in a record written before records were chained. */
  readonly link?: RoundLink;
}

export interface TokenRecord {
  readonly id: string;
  readonly label: string;
  readonly salt: string;
  readonly hash: string;
  readonly createdAt: string;
  /** The one client identity this token speaks for: granted when issued, or recorded at its first use. */
  readonly clientId?: string;
  /** The operator's cap on the examples an upload with this token may claim. */
  readonly maxExamples?: number;
  /**
   * When the token was revoked (ISO time): it admits no one, and the record stays so that its client id
   * stays reserved (no unbound token can take it over).
   */
  readonly revokedAt?: string;
}

/** The round open now: which clients were sampled and when its deadline falls. */
export interface OpenRoundRecord {
  readonly round: number;
  readonly attempt: number;
  readonly assigned: readonly string[];
  /** Milliseconds since the epoch. */
  readonly deadlineAt: number;
}

export type UploadOutcome = 'kept' | 'duplicate' | 'closed';

/** A commit whose round is not the stored round + 1: another coordinator committed it first. */
export class StaleRoundError extends Error {
  constructor(
    readonly round: number,
    readonly stored: number,
  ) {
    super(`round ${round} cannot follow the stored round ${stored}: another coordinator committed first`);
    this.name = 'StaleRoundError';
  }
}

export interface FederationStore {
  /** The configuration the federation was created with, or null for a fresh store. */
  loadConfig(): Promise<FederationConfig | null>;
  saveConfig(config: FederationConfig): Promise<void>;
  loadState(): Promise<FederationState | null>;
  /** The last committed round (0: none), without the K-vectors. */
  committedRound(): Promise<number>;
  /**
   * Writes the new state and the round's record atomically and durably, and drops the round's uploads
   * and open-round record; throws StaleRoundError unless `state.round` is the stored round + 1.
   */
  commitRound(state: FederationState, record: RoundRecord): Promise<void>;
  loadRound(round: number): Promise<RoundRecord | null>;
  /**
   * The server's sampling secret: 32 random bytes made at the first call and kept (the same for every
   * gateway of a shared store); never sent to a client, not in backups (a restored store makes its own).
   */
  loadSecret(): Promise<Uint8Array>;
  /** Reference replica digest (hex) of a committed state, set by the first client that reports it. */
  loadDigest(round: number): Promise<string | null>;
  saveDigest(round: number, digest: string): Promise<void>;
  putToken(token: TokenRecord): Promise<void>;
  getToken(id: string): Promise<TokenRecord | null>;
  deleteToken(id: string): Promise<boolean>;
  listTokens(): Promise<TokenRecord[]>;
  /**
   * `listener` runs with a token's id when this or another process changed that token (revoked it), and
   * with null when tokens may have changed unseen (a shared store's session came back): the server then
   * checks the tokens its live sessions speak with. Optional: a store only one process can open (the
   * embedded one) has every change made through tokens.ts in that process, which tells the server itself.
   */
  watchTokens?(listener: (tokenId: string | null) => void): void;
  /** Records the round the coordinator opened, replacing an earlier attempt and dropping its uploads. */
  saveOpenRound(open: OpenRoundRecord): Promise<void>;
  loadOpenRound(): Promise<OpenRoundRecord | null>;
  /**
   * Keeps a client's upload (an encoded UPLOAD frame) of the open round once: 'duplicate' when one is
   * already kept, 'closed' when `round` is not the open round (committed or replaced meanwhile).
   */
  putUpload(round: number, clientId: string, frame: Uint8Array): Promise<UploadOutcome>;
  uploadCount(round: number): Promise<number>;
  loadUploads(round: number): Promise<Map<string, Uint8Array>>;
  /** Marks a client connected to this process, or no longer. */
  setPresent(clientId: string, present: boolean): Promise<void>;
  /** Clients connected to any live process on this store. */
  listPresent(): Promise<string[]>;
  /** Whether this process opens and commits rounds: always for an embedded store, the elected one for a shared store. */
  readonly coordinator: boolean;
  /**
   * `listener` runs when another process may have changed the store, or this one's coordinator role
   * changed: the engine then reads what it needs again. An embedded store never calls it.
   */
  watch(listener: () => void): void;
  close(): Promise<void>;
}
