// What a simulation leaves behind: report.json (everything measured, machine-readable), a
// self-contained report.html (the same, with inline SVG charts; no network, no scripts) and the final
// global model as a checkpoint.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FederationConfig } from '../protocol';
import type { FederationState } from '../federation/store';
import { type EvaluationSetup, federationOrigin, makeCheckpoint, saveCheckpoint } from '../trainer/zo/checkpoint';
import type { SimulationReport } from './report';
import { renderReportHtml } from './report-html';

export function writeReport(dir: string, report: SimulationReport): { json: string; html: string } {
  const json = join(dir, 'report.json');
  const html = join(dir, 'report.html');
  writeFileSync(json, `${JSON.stringify(report, null, 1)}\n`);
  writeFileSync(html, renderReportHtml(report));
  return { json, html };
}

/**
 * The final global model as a checkpoint (base identity + the committed integer coefficients), if any round
 * was committed; it records how the report's held-out loss was measured, so `fedkseed eval` repeats it.
 */
export function writeFinalCheckpoint(
  dir: string,
  baseModel: string,
  config: FederationConfig,
  state: FederationState | null,
  evaluation: EvaluationSetup,
): string | null {
  if (!state || state.round === 0) return null;
  const path = join(dir, 'checkpoint.json');
  const checkpoint = makeCheckpoint(federationOrigin(baseModel, config), state.coefficients, { round: state.round, evaluation });
  saveCheckpoint(path, checkpoint);
  return path;
}
