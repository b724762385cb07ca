// The bounds of every hyperparameter, once: what a federation's configuration may hold so that every
// client accepts its WELCOME (the codec checks them, node/codec.ts readConfig), and what the command line, the
// extension's settings (package.json, held to this table by test/unit/hyperparameter-bounds.test.ts), the
// trainer's RPC schemas, checkpoints, backups and stores accept. contracts/hyperparameters.ts makes zod
// schemas of them. Pure data, at the bottom of the layers, so every layer reads the same numbers.
import { MAX_PAIRS } from './messages';

/** The largest value of the protocol's u32 fields: rounds, clients per round, round numbers. */
export const MAX_U32 = 0xffffffff;

/** The most rounds a federation may have: round numbers travel as u32. */
export const MAX_ROUNDS = MAX_U32;

/** The most local steps per round (τ) a client accepts: an upload never carries more pairs. */
export const MAX_TAU = MAX_PAIRS;

/** Node's timers hold at most 2^31 − 1 ms (about 24.8 days); a longer deadline would fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A closed interval; `exclusiveMin` opens it at the bottom (a scale or a rate must be above 0). */
export interface Bound {
  readonly min: number;
  readonly max: number;
  readonly integer: boolean;
  readonly exclusiveMin?: boolean;
  /** Why the bound is where it is, for messages that refuse a value. */
  readonly why: string;
}

export const HYPERPARAMETER_BOUNDS = {
  /**
   * Shared seeds K. Clients keep K float64 coefficients, K sampling weights and (Pro) K probabilities in
   * every ROUND, and seed indices are packed in ⌈log2 K⌉ bits; 65,536 keeps a round's download within a
   * few hundred KB at worst and is 16× the paper's largest K.
   */
  k: { min: 1, max: 65_536, integer: true, why: "what clients handle: K coefficients, sampling weights and Pro's probabilities per round" },
  /** Seed F of the generator: a u32 on the wire. */
  federationSeed: { min: 0, max: MAX_U32, integer: true, why: 'a 32-bit field of the protocol' },
  /** Perturbation scale ε: above 0 (a zero scale measures nothing), at most 1 (z is unit normal per entry). */
  epsilon: { min: 0, exclusiveMin: true, max: 1, integer: false, why: 'a perturbation of more than the unit normal itself measures no gradient' },
  /** Learning rate η: above 0 and finite (divergence is caught while training, not by a bound). */
  eta: { min: 0, exclusiveMin: true, max: Number.MAX_VALUE, integer: false, why: 'a rate must be a positive finite number' },
  /** Local steps per round τ: an upload carries τ (seed, g) pairs. */
  tau: { min: 1, max: MAX_TAU, integer: true, why: 'the most pairs an upload carries: clients refuse more' },
  /** Examples per ZO step: the forward's batch dimension. */
  batchSize: { min: 1, max: 1024, integer: true, why: 'two forwards of this many windows per step must fit beside the weights' },
  /** Tokens per example window: at least a token and its target. */
  seqLen: { min: 2, max: 131_072, integer: true, why: 'a window needs a token and its target; no model reads more positions' },
  /** Rounds of a federation: round numbers travel as u32. */
  rounds: { min: 1, max: MAX_ROUNDS, integer: true, why: 'round numbers travel as 32-bit integers' },
  /** Clients sampled per round: a u32 on the wire. */
  clientsPerRound: { min: 1, max: MAX_U32, integer: true, why: 'a 32-bit field of the protocol' },
  /**
   * Seconds a sampled client has to upload, where people set it (command line, settings): at least 1 s (a
   * client needs time to train and upload; shorter restarts rounds without end), at most a Node timer.
   */
  deadlineSeconds: {
    min: 1,
    max: Math.floor(MAX_TIMER_MS / 1000),
    integer: false,
    why: 'clients need time to train and upload, and a Node timer holds at most about 24.8 days',
  },
} as const satisfies Record<string, Bound>;

export type Hyperparameter = keyof typeof HYPERPARAMETER_BOUNDS;

/** Whether `value` lies within `bound`. */
export function withinBound(bound: Bound, value: number): boolean {
  if (!Number.isFinite(value) || (bound.integer && !Number.isInteger(value))) return false;
  return (bound.exclusiveMin ? value > bound.min : value >= bound.min) && value <= bound.max;
}

/** The interval in words, for messages: "an integer from 1 to 65,536", "a number above 0, at most 1". */
export function describeBound(bound: Bound): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const kind = bound.integer ? 'an integer' : 'a number';
  const top = bound.max === Number.MAX_VALUE ? 'finite' : `at most ${n(bound.max)}`;
  return bound.exclusiveMin
    ? `${kind} above ${n(bound.min)}, ${top}`
    : `${kind} from ${n(bound.min)}${bound.max === Number.MAX_VALUE ? ' up' : ` to ${n(bound.max)}`}`;
}
