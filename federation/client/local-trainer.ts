// What the federation client needs from a trainer: an exact replica it can move by integer
// coefficient changes, a digest of that replica, and a round of local ZO steps.
import type { FederationConfig, SeedGradient, SparseCoefficientDelta } from '../../protocol';

export interface LossStat {
  readonly sum: number;
  readonly count: number;
}

export interface TrainRoundRequest {
  readonly round: number;
  /** ZO steps to run (τ). */
  readonly steps: number;
  /** Pro: the seed distribution p (length K), bit-identical on every client; null: uniform. */
  readonly probabilities: Float64Array | null;
  readonly config: FederationConfig;
}

/** One local step as the trainer saw it. */
export interface StepProgress {
  readonly round: number;
  readonly step: number;
  readonly steps: number;
  readonly seed: number;
  readonly g: number;
  /** (L₊ + L₋) / 2 on the step's batch; NaN when the step was skipped. */
  readonly loss: number;
}

export interface TrainRoundResult {
  /** One (seed index, g) per step that was not skipped, in step order; g is sent as float32. */
  readonly pairs: readonly SeedGradient[];
  readonly examples: number;
  readonly lossBefore: LossStat;
  readonly lossAfter: LossStat;
}

export interface LocalTrainer {
  /** SHA-256 (32 bytes) identity of the base model. */
  readonly modelHash: Uint8Array;
  readonly generatorVersion: number;
  /** Adds the integer change ΔC (units of 2^-16, sparse) to the replica, exactly. */
  applyCoefficientDelta(delta: SparseCoefficientDelta, config: FederationConfig): Promise<void>;
  /**
   * Makes the replica the base model again, w0 read back from the base weights (not the current replica
   * minus its coefficients, which may be what went wrong): every applied coefficient is dropped, so the
   * change from round 0 (the server's full C) rebuilds it. A client whose digest the federation refused
   * calls this once before it rejoins.
   */
  rebuildReplica(): Promise<void>;
  /** SHA-256 of the exact replica as 64 lowercase hex characters. */
  digest(): Promise<string>;
  /** Runs local steps from the replica; must leave the replica itself unchanged (its digest stays). */
  trainRound(request: TrainRoundRequest, onStep?: (progress: StepProgress) => void): Promise<TrainRoundResult>;
}
