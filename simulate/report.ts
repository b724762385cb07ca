// What a simulation leaves behind: report.json (everything measured, machine-readable) and a
// self-contained report.html (the same, with inline SVG charts; no network, no scripts).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RoundReport } from '../contracts/cli-events';
import type { ClientBytes, FederationConfig } from '../protocol';
import { renderReportHtml } from './report-html';

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
}

export function writeReport(dir: string, report: SimulationReport): { json: string; html: string } {
  const json = join(dir, 'report.json');
  const html = join(dir, 'report.html');
  writeFileSync(json, `${JSON.stringify(report, null, 1)}\n`);
  writeFileSync(html, renderReportHtml(report));
  return { json, html };
}
