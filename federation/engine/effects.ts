// What the round lifecycle asks to be done: the effects decide() (decide.ts) returns and the driver
// (driver.ts) performs in order. Those that touch the store complete with an event fed back to decide.
import type { QuantizedProbabilities, ServerMessage } from '../../protocol';
import type { ServerEvents } from '../events';
import type { LogLevel, LogRecord } from '../log';
import type { FederationState, OpenRoundRecord, RoundRecord } from '../store';

/** An event for the server's listeners, typed by its name. */
export type Emit = { [K in keyof ServerEvents]: { readonly kind: 'emit'; readonly name: K; readonly payload: ServerEvents[K][0] } }[keyof ServerEvents];

export type Effect =
  | { readonly kind: 'log'; readonly level: LogLevel; readonly fields: LogRecord }
  | Emit
  /** Arms the one round timer (replacing any), to fire at `at` (ms since the epoch). */
  | { readonly kind: 'armTimer'; readonly round: number; readonly attempt: number; readonly reason: 'deadline' | 'paced'; readonly at: number }
  | { readonly kind: 'cancelTimer' }
  /** Completes with openRoundSaved or openRoundSaveFailed. */
  | { readonly kind: 'saveOpenRound'; readonly record: OpenRoundRecord }
  /** Sends each of these clients connected here its ROUND: the catch-up to round − 1 and the probabilities. */
  | { readonly kind: 'assign'; readonly round: number; readonly clients: readonly string[]; readonly probabilities: QuantizedProbabilities | null }
  /**
   * Completes with allInChecked: whether the round's store holds an upload of each `awaited` client
   * (null: all `sampled` of them); `local` are those this engine holds.
   */
  | {
      readonly kind: 'checkAllIn';
      readonly round: number;
      readonly attempt: number;
      readonly awaited: readonly string[] | null;
      readonly local: readonly string[];
      readonly sampled: number;
      readonly then: 'pace' | 'none';
    }
  /** Completes with uploadsCollected or collectFailed. */
  | { readonly kind: 'collectUploads'; readonly round: number; readonly attempt: number }
  /** Completes with commitDone or commitFailed. */
  | { readonly kind: 'commit'; readonly state: FederationState; readonly record: RoundRecord }
  /** Committed rounds' changes, for catch-up; digest reports of states before `round` can no longer be decided. */
  | { readonly kind: 'committed'; readonly changes: readonly { readonly round: number; readonly change: Float64Array }[]; readonly round: number }
  /** Sends `message` to each of these clients connected here, its bytes counted toward `round`. */
  | { readonly kind: 'send'; readonly clients: readonly string[]; readonly message: ServerMessage; readonly round: number }
  /** The federation finished: every client connected here gets the final state. */
  | { readonly kind: 'finalSync' }
  /** Start the next round once enough clients are connected (reads who is, then presenceRead). */
  | { readonly kind: 'startRound' }
  /** Read the shared store again (another coordinator committed). */
  | { readonly kind: 'follow' };
