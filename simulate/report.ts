// What a simulation leaves behind: report.json (everything measured, machine-readable) and a
// self-contained report.html (the same, with inline SVG charts; no network, no scripts).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientBytes, FederationConfig } from '../protocol';
import { renderReportHtml } from './report-html';

export interface RoundBytesReport {
  readonly up: number;
  readonly down: number;
  readonly perClient: Readonly<Record<string, { readonly up: number; readonly down: number }>>;
  /** What FedAvg would have moved for the same participants (2 × 4·d each). */
  readonly fedAvg: number;
}

export interface RoundReport {
  /** 0: the base model, before any round. */
  readonly round: number;
  /** Held-out loss of the global model after this round (null when it could not be measured). */
  readonly heldOutLoss: number | null;
  readonly perplexity: number | null;
  readonly heldOutTokens: number;
  /** SHA-256 of the evaluated replica (base + committed coefficients). */
  readonly digest: string;
  /** Digest each client reported after syncing to this round. */
  readonly clientDigests: Readonly<Record<string, string>>;
  /** Every client digest equals the evaluator's; null when no client reported one. */
  readonly digestsAgree: boolean | null;
  readonly participants: readonly string[];
  readonly examples: number;
  /** Participants' mean loss on their own evaluation examples before/after their local steps. */
  readonly clientLossBefore: number | null;
  readonly clientLossAfter: number | null;
  readonly bytes: RoundBytesReport;
  readonly cumulativeBytes: number;
  readonly cumulativeFedAvgBytes: number;
  /** From the round's start to its commit. */
  readonly seconds: number;
  readonly evalMs: number;
}

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
}

export function writeReport(dir: string, report: SimulationReport): { json: string; html: string } {
  const json = join(dir, 'report.json');
  const html = join(dir, 'report.html');
  writeFileSync(json, `${JSON.stringify(report, null, 1)}\n`);
  writeFileSync(html, renderReportHtml(report));
  return { json, html };
}
