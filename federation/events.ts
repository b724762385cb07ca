// Events the server emits for a UI or the CLI to show.
import type { DigestStatus } from '../protocol';

export interface RoundBytes {
  /** Frame bytes client → server and server → client attributed to the round, all clients. */
  readonly up: number;
  readonly down: number;
  /** Per participating client: up + down. */
  readonly perClient: Readonly<Record<string, { readonly up: number; readonly down: number }>>;
  /** What FedAvg would have moved for the same participants: 2 × 4·d each. */
  readonly fedAvg: number;
}

export interface ServerEvents {
  roundStarted: [{ round: number; clients: readonly string[]; attempt: number }];
  roundCommitted: [{ round: number; participants: readonly string[]; examples: number; lossBefore: number; lossAfter: number; bytes: RoundBytes }];
  roundRestarted: [{ round: number; reason: string }];
  /** An upload left out of a round whose coefficients it would have pushed out of the exact range. */
  uploadExcluded: [{ round: number; clientId: string; reason: string }];
  /** An upload's loss report left out of the round's mean losses, which it would have made infinite (its g still count). */
  lossExcluded: [{ round: number; clientId: string; reason: string }];
  /**
   * An upload the round's bounds changed (robust.ts): g clipped at gBound, its g scaled by `scaledBy`
   * to bring its Σ|g| within normBound, repeats of a seed beyond repeatCap dropped, or its example claim
   * counted as less.
   */
  uploadBounded: [
    {
      round: number;
      clientId: string;
      clipped: number;
      scaledBy: number;
      repeatsDropped: number;
      claimedExamples: number;
      countedExamples: number;
      gBound: number;
      normBound: number;
      examplesBound: number;
      repeatCap: number;
    },
  ];
  /** A sampled client missed this many deadlines in a row: rounds no longer wait for it until it uploads again. */
  notAwaited: [{ round: number; clientId: string; missed: number }];
  /** Rounds stopped for good (a diverging federation); the committed state is untouched. */
  halted: [{ round: number; reason: string }];
  clientJoined: [{ clientId: string; lastSyncedRound: number }];
  clientLeft: [{ clientId: string; reason: string }];
  upload: [{ round: number; clientId: string; pairs: number; digest: DigestStatus }];
  digestMismatch: [{ round: number; clientId: string; expected: string; actual: string }];
  bytes: [{ clientId: string | null; direction: 'up' | 'down'; bytes: number; round: number }];
  rejected: [{ clientId: string | null; code: number; message: string }];
  finished: [{ round: number }];
}
