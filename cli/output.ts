// How commands talk to people (progress on stderr, results on stdout) and to programs (--json lines).
import type { DataProblemEvent } from '../contracts/cli-events';
import type { DataProblem } from '../trainer/data/problems';
import { formatProblem } from '../trainer/data/problems';

export function emitJson(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

export function note(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Reports a dataset line problem the moment it is found: visible, never silent. */
export function problemReporter(json: boolean): (p: DataProblem) => void {
  return (p) =>
    json
      ? emitJson({ event: 'data-problem', file: p.file, line: p.line, message: p.message } satisfies DataProblemEvent)
      : note(`warning: ${formatProblem(p)}`);
}

export function fixed(x: number, digits = 4): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}

/** A share as people read it, the one spelling of every measure the CLI prints: "16.4%" ("–" for none). */
export function percent(x: number | null): string {
  return x === null || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(1)}%`;
}
