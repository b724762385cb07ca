// The pace of a run in this window's process: steps the trainer did since this process began recording
// the run, over the time since then. A resumed run starts at its checkpoint's step, and a federation's
// step jumps to the next round's first step (also past rounds this client sat out); counting the run's
// step from 0, or those jumps, as work done made the time left far too short.
// Pure (no VS Code), so it is unit-tested on its own.

/** Where the trainer stands: a local run's step (round 0), or a federation round and the step within it. */
export interface StepPosition {
  readonly round: number;
  readonly step: number;
}

/** Time left is not guessed from less than this much work. */
const MIN_ELAPSED_MS = 1000;

export class StepRate {
  private origin: { t: number } | null = null;
  private last: StepPosition | null = null;
  private done = 0;

  /** The trainer's position at time `t` (ms). The first one is where this process began: not work done. */
  observe(t: number, at: StepPosition): void {
    if (!this.origin || !this.last) {
      this.origin = { t };
      this.last = at;
      return;
    }
    if (at.round === this.last.round) {
      if (at.step > this.last.step) this.done += at.step - this.last.step;
    } else if (at.round > this.last.round) {
      // A new round starts from its step 0: the steps seen in it are the ones done.
      this.done += Math.max(0, at.step);
    }
    this.last = at;
  }

  /** Steps done in this process. */
  get steps(): number {
    return this.done;
  }

  /** Steps per second in this process, or null before any step or second of work. */
  rate(now: number): number | null {
    if (!this.origin || this.done === 0) return null;
    const elapsed = now - this.origin.t;
    return elapsed >= MIN_ELAPSED_MS ? this.done / (elapsed / 1000) : null;
  }

  /** Seconds for `stepsLeft` more steps at this process's pace. */
  secondsLeft(now: number, stepsLeft: number): number | null {
    const rate = this.rate(now);
    return rate ? Math.max(0, stepsLeft / rate) : null;
  }
}
