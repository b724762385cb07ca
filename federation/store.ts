// The server's durable state behind a small interface: the round engine (round-engine.ts) and the
// transport's token checks see only this, so another backend (PostgreSQL, say) can replace the embedded
// LevelDB one. A round is committed with one atomic, synced write: after it returns, the round survives
// kill -9.
import type { FederationConfig } from '../protocol';

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
}

export interface FederationStore {
  /** The configuration the federation was created with, or null for a fresh store. */
  loadConfig(): Promise<FederationConfig | null>;
  saveConfig(config: FederationConfig): Promise<void>;
  loadState(): Promise<FederationState | null>;
  /** Writes the new state and the round's record atomically and durably. */
  commitRound(state: FederationState, record: RoundRecord): Promise<void>;
  loadRound(round: number): Promise<RoundRecord | null>;
  /** Reference replica digest (hex) of a committed state, set by the first client that reports it. */
  loadDigest(round: number): Promise<string | null>;
  saveDigest(round: number, digest: string): Promise<void>;
  putToken(token: TokenRecord): Promise<void>;
  getToken(id: string): Promise<TokenRecord | null>;
  deleteToken(id: string): Promise<boolean>;
  listTokens(): Promise<TokenRecord[]>;
  close(): Promise<void>;
}
