// The simulation's report: everything measured, as report.json holds it (report-files.ts writes it,
// with report.html beside it).
import type { RoundReport } from '../contracts/cli-events';
import type { ClientBytes, FederationConfig } from '../protocol';
import type { TextSamplesReport } from './text-samples';

export type { RoundBytesReport, RoundReport } from '../contracts/cli-events';

export interface ClientReport {
  readonly id: string;
  readonly examples: number;
  readonly groups: readonly string[];
  readonly exitCode: number | null;
  readonly finalDigest: string | null;
  readonly bytes: ClientBytes | null;
  readonly error: string | null;
}

export interface SimulationReport {
  readonly format: 'fedkseed-simulation';
  readonly version: 1;
  readonly status: 'completed' | 'interrupted' | 'failed';
  readonly error: string | null;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly seconds: number;
  readonly config: {
    readonly federation: FederationConfig;
    readonly clients: number;
    readonly split: 'group' | 'dirichlet';
    readonly alpha: number | null;
    readonly seqLen: number;
    readonly evalBatchSize: number;
    readonly heldOutFraction: number;
    readonly model: { readonly path: string; readonly identity: string; readonly parameters: number };
    readonly data: {
      readonly path: string;
      readonly train: number;
      readonly heldOut: number;
      readonly evalExamples: number;
      readonly groups: number;
      /** Groups (and their training windows) dealt to no client: only an explicit --groups-per-client leaves any. */
      readonly unassigned: { readonly groups: readonly string[]; readonly examples: number };
    };
  };
  readonly clients: readonly ClientReport[];
  readonly rounds: readonly RoundReport[];
  readonly totals: {
    readonly committedRounds: number;
    readonly bytes: number;
    readonly fedAvgBytes: number;
    /** All clients' replicas equalled the evaluator's in every round they reported. */
    readonly replicasIdentical: boolean | null;
  };
  /** Coefficients of the final global model, for `fedkseed export --checkpoint`. */
  readonly checkpoint: string | null;
  /** A few held-out windows in text: each token's loss and a completion, base model against the final one. */
  readonly textSamples: TextSamplesReport | null;
}
