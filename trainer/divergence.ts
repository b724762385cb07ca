// When a local run counts as diverged: its held-out loss becomes non-finite or rises more than
// DIVERGENCE_NATS above where the run started, or the mean training loss of the last DIVERGENCE_WINDOW steps
// rises that far above the mean of its first DIVERGENCE_WINDOW, or DIVERGENCE_WINDOW steps in a row had a
// non-finite loss. The run then stops; its best checkpoint is kept either way.
import type { StepEvent } from './zo/zo-trainer';

export const DIVERGENCE_NATS = 1;
export const DIVERGENCE_WINDOW = 20;

/** Why a run stopped before its last step, other than being asked to. */
export interface Divergence {
  readonly step: number;
  /** What was seen, in words ("held-out loss 7.91 is 2.60 nats above the start 5.31"). */
  readonly reason: string;
}

/** Watches a run's losses; returns the reason it diverged, or null, for each thing seen. */
export class DivergenceWatch {
  private readonly first: number[] = [];
  private readonly recent: number[] = [];
  private nonFiniteRun = 0;

  /** A held-out evaluation, against the run's first one (`start`, null before it). */
  heldOut(loss: number, start: number | null): string | null {
    if (!Number.isFinite(loss)) return 'held-out loss is not finite';
    if (start !== null && loss > start + DIVERGENCE_NATS)
      return `held-out loss ${loss.toFixed(4)} is ${(loss - start).toFixed(2)} nats above the start ${start.toFixed(4)}`;
    return null;
  }

  /** A training step. */
  step(e: StepEvent): string | null {
    if (e.skipped) return ++this.nonFiniteRun >= DIVERGENCE_WINDOW ? `the training loss was not finite for ${this.nonFiniteRun} steps in a row` : null;
    this.nonFiniteRun = 0;
    const loss = (e.lossPlus + e.lossMinus) / 2;
    if (this.first.length < DIVERGENCE_WINDOW) this.first.push(loss);
    this.recent.push(loss);
    if (this.recent.length > DIVERGENCE_WINDOW) this.recent.shift();
    if (this.first.length < DIVERGENCE_WINDOW || this.recent.length < DIVERGENCE_WINDOW) return null;
    const start = mean(this.first);
    const now = mean(this.recent);
    return now > start + DIVERGENCE_NATS
      ? `the training loss (mean of the last ${DIVERGENCE_WINDOW} steps) rose from ${start.toFixed(4)} to ${now.toFixed(4)}`
      : null;
  }
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
