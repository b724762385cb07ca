// The round lifecycle's state, as plain immutable data: what decide() (decide.ts) reads and returns.
// Everything that changes between rounds lives here (the open round, its uploads and arrival times, the
// committed state, the scales of the bounds, the paces, misses, refusals); the rules are fixed at open.
import type { FederationConfig, UploadMessage } from '../../protocol';
import type { Pacing } from '../pacing';
import type { Robustness, RoundStatistics } from '../robust';
import type { FederationState } from '../store';

/** What a federation's rounds follow; fixed once the engine opened its store. */
export interface Rules {
  readonly config: FederationConfig;
  /** Connected clients needed before a round starts. */
  readonly minClients: number;
  readonly probabilityBits: number;
  readonly mantissaBits: number;
  readonly robustness: Robustness;
  readonly pacing: Pacing;
  /** d, the model's parameter count: only used to report what FedAvg would have cost. */
  readonly paramCount: number;
  /** The store's sampling secret (sampling.ts): samples and the records' keys derive from it. */
  readonly secret: Uint8Array;
}

export type CloseReason = 'complete' | 'deadline' | 'paced';

export interface ByteCount {
  readonly up: number;
  readonly down: number;
}

/** A commit written to the store and not yet confirmed: what the state becomes once it is. */
export interface PendingCommit {
  readonly next: FederationState;
  readonly change: Float64Array;
  readonly statistics: RoundStatistics;
  readonly participants: readonly string[];
  readonly examples: number;
  readonly lossBefore: number;
  readonly lossAfter: number;
  readonly exponent: number;
  /** The round's pace (pacing.ts), or null. */
  readonly pace: number | null;
  readonly reason: CloseReason;
}

export interface OpenRound {
  readonly round: number;
  readonly attempt: number;
  /** Its sampled clients, in sample order. */
  readonly assigned: ReadonlySet<string>;
  readonly uploads: ReadonlyMap<string, UploadMessage>;
  /** Each upload's time from the start (ms), as this engine received it. */
  readonly arrivals: ReadonlyMap<string, number>;
  readonly bytes: ReadonlyMap<string, ByteCount>;
  /** When it started (ms since the epoch): upload times are counted from it. */
  readonly startedAt: number;
  readonly deadlineAt: number;
  /** Its deadline was brought forward to the recent pace. */
  readonly paced: boolean;
  /** A deadline timer (configured or paced) is armed for it: only ever on the coordinator. */
  readonly timerArmed: boolean;
  /** Its record is in the store (a round this engine opens is not, until saveOpenRound finished). */
  readonly announced: boolean;
  /** Why it is closing, once it is: uploads being collected, then its commit written. */
  readonly closing: CloseReason | null;
  readonly commit: PendingCommit | null;
}

/** The last round that closed without waiting for some of its sampled clients, and which. */
export interface Skipped {
  readonly round: number;
  readonly deadlineAt: number;
  readonly clients: ReadonlySet<string>;
}

export interface EngineState {
  readonly rules: Rules;
  readonly committed: FederationState;
  /** The statistics of the last HISTORY_ROUNDS committed rounds, oldest first: the scales of the next bounds. */
  readonly statistics: readonly RoundStatistics[];
  /** The largest Σ|C_j| of any committed round: bounds what a client catching up from it holds. */
  readonly peakSumAbs: number;
  /** The paces of the last committed rounds that had one, oldest first. */
  readonly paces: readonly number[];
  /** The attempt the next round this engine opens gets. */
  readonly attempt: number;
  /** Rounds refused in a row because their coefficients would leave the replicas' exact range. */
  readonly refusedInARow: number;
  /** Clients whose uploads alone got the open round refused: not sampled again until it commits. */
  readonly refusedClients: ReadonlySet<string>;
  /** Why rounds stopped for good, or null. */
  readonly halted: string | null;
  /** Deadlines each client missed in a row; from MISSES_BEFORE_NOT_AWAITED on, rounds stop waiting for it. */
  readonly missedInARow: ReadonlyMap<string, number>;
  readonly skipped: Skipped | null;
  readonly open: OpenRound | null;
  readonly closed: boolean;
}

/** Deadlines a client may miss in a row before rounds stop waiting for it (until it uploads again). */
export const MISSES_BEFORE_NOT_AWAITED = 2;

/** Refused rounds in a row after which the engine stops starting rounds. */
export const REFUSALS_BEFORE_HALT = 3;

export function initialState(rules: Rules, committed: FederationState, statistics: readonly RoundStatistics[], peakSumAbs: number): EngineState {
  return {
    rules,
    committed,
    statistics,
    peakSumAbs,
    paces: [],
    attempt: 0,
    refusedInARow: 0,
    refusedClients: new Set(),
    halted: null,
    missedInARow: new Map(),
    skipped: null,
    open: null,
    closed: false,
  };
}

export const isFinished = (s: EngineState): boolean => s.committed.round >= s.rules.config.rounds;
