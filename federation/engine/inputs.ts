// What happens to the round lifecycle: the events decide() (decide.ts) takes. Each carries the facts it
// needs (the time, whether this process coordinates), so decide reads no clock and no store.
import type { UploadMessage } from '../../protocol';
import type { FederationState, OpenRoundRecord, RoundRecord } from '../store';

export type EngineEvent =
  /** The clients connected on every gateway were read, to start a round. */
  | { readonly type: 'presenceRead'; readonly connected: readonly string[]; readonly now: number }
  | { readonly type: 'openRoundSaved'; readonly round: number; readonly attempt: number }
  | { readonly type: 'openRoundSaveFailed'; readonly round: number; readonly attempt: number; readonly error: string }
  /** A round another gateway's coordinator opened, read from the store. */
  | { readonly type: 'roundAdopted'; readonly record: OpenRoundRecord }
  /** The store kept a client's upload for the round. */
  | {
      readonly type: 'uploadAccepted';
      readonly round: number;
      readonly attempt: number;
      readonly clientId: string;
      readonly upload: UploadMessage;
      readonly now: number;
    }
  /** An accepted upload was acknowledged: see whether the round is complete, else whether to pace it. */
  | { readonly type: 'uploadSettled'; readonly round: number; readonly attempt: number; readonly coordinator: boolean }
  /** Whether every awaited client's upload is in the store. */
  | {
      readonly type: 'allInChecked';
      readonly round: number;
      readonly attempt: number;
      readonly allIn: boolean;
      readonly then: 'pace' | 'none';
      readonly coordinator: boolean;
    }
  /** An upload for a round that closed already (acknowledged late). */
  | { readonly type: 'lateUpload'; readonly clientId: string; readonly round: number; readonly now: number }
  | { readonly type: 'timerFired'; readonly round: number; readonly attempt: number; readonly reason: 'deadline' | 'paced'; readonly coordinator: boolean }
  /** The uploads of a closing round the store holds (those through other gateways included). */
  | {
      readonly type: 'uploadsCollected';
      readonly round: number;
      readonly attempt: number;
      readonly stored: ReadonlyMap<string, UploadMessage>;
      readonly now: number;
    }
  | { readonly type: 'collectFailed'; readonly round: number; readonly attempt: number; readonly error: string }
  | { readonly type: 'commitDone'; readonly round: number }
  /** `stale`: another coordinator committed the round first. */
  | { readonly type: 'commitFailed'; readonly round: number; readonly stale: boolean; readonly error: string }
  /** Rounds another gateway committed, read from the store. */
  | { readonly type: 'commitsRead'; readonly state: FederationState; readonly records: readonly RoundRecord[] }
  /** The store was read again: this process coordinates (or no longer does). */
  | { readonly type: 'followed'; readonly coordinator: boolean }
  /** Frame bytes of a peer, toward `round` (default: the open round, else the next). */
  | { readonly type: 'bytes'; readonly clientId: string | null; readonly direction: 'up' | 'down'; readonly bytes: number; readonly round?: number }
  | { readonly type: 'closed' };
