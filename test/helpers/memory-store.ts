// A FederationStore in memory, for driving the round engine without LevelDB. Vectors are copied in and
// out, so nothing the engine holds aliases what was committed. `failCommits` makes the next commits
// throw, as a full disk would.
import type { FederationConfig } from '../../protocol';
import { LocalRounds } from '../../federation/local-rounds';
import { StaleRoundError, type FederationState, type FederationStore, type RoundRecord, type TokenRecord } from '../../federation/store';

function copyState(s: FederationState): FederationState {
  return {
    round: s.round,
    coefficients: new Float64Array(s.coefficients),
    residual: new Float64Array(s.residual),
    importanceSum: new Float64Array(s.importanceSum),
    importanceCount: new Float64Array(s.importanceCount),
  };
}

export class MemoryFederationStore extends LocalRounds implements FederationStore {
  config: FederationConfig | null = null;
  state: FederationState | null = null;
  readonly rounds = new Map<number, RoundRecord>();
  readonly digests = new Map<number, string>();
  readonly tokens = new Map<string, TokenRecord>();
  /** The sampling secret: fixed, so that runs on a memory store replay. */
  readonly secret: Uint8Array = new Uint8Array(32).fill(0x5a);
  failCommits = 0;
  closed = false;

  async loadConfig(): Promise<FederationConfig | null> {
    return this.config;
  }

  async saveConfig(config: FederationConfig): Promise<void> {
    this.config = config;
  }

  async loadState(): Promise<FederationState | null> {
    return this.state && copyState(this.state);
  }

  async committedRound(): Promise<number> {
    return this.state?.round ?? 0;
  }

  async commitRound(state: FederationState, record: RoundRecord): Promise<void> {
    if (this.failCommits > 0) {
      this.failCommits--;
      throw new Error('the disk is full');
    }
    if (state.round !== (this.state?.round ?? 0) + 1) throw new StaleRoundError(state.round, this.state?.round ?? 0);
    this.state = copyState(state);
    this.rounds.set(record.round, { ...record, change: new Float64Array(record.change), participants: [...record.participants] });
    this.committed(record.round);
  }

  async loadRound(round: number): Promise<RoundRecord | null> {
    const r = this.rounds.get(round);
    return r ? { ...r, change: new Float64Array(r.change) } : null;
  }

  async loadSecret(): Promise<Uint8Array> {
    return this.secret;
  }

  async loadDigest(round: number): Promise<string | null> {
    return this.digests.get(round) ?? null;
  }

  async saveDigest(round: number, digest: string): Promise<void> {
    this.digests.set(round, digest);
  }

  async putToken(token: TokenRecord): Promise<void> {
    this.tokens.set(token.id, token);
  }

  async getToken(id: string): Promise<TokenRecord | null> {
    return this.tokens.get(id) ?? null;
  }

  async deleteToken(id: string): Promise<boolean> {
    return this.tokens.delete(id);
  }

  async listTokens(): Promise<TokenRecord[]> {
    return [...this.tokens.values()];
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
