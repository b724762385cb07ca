// Deadlines that follow the honest clients' pace. A round waits for its sampled clients up to the
// configured deadline; once more than half of them have uploaded, it closes instead at `multiple` × the
// pace of recent rounds, within [minDeadlineMs, deadline]. A round's pace is the lower median, over its
// sampled clients, of the time from its start to each one's upload (a client without an upload counting
// as never); the recent pace is the lower median of the last `historyRounds` rounds' paces. Colluders
// fewer than half of a round's sample cannot move its pace outside the range of its honest clients'
// upload times (the median has honest values on both sides), so they can stretch a paced deadline to no
// more than `multiple` × the slowest honest time nor shrink it below `multiple` × the fastest, and never
// outside [minDeadlineMs, deadline]; and while fewer than half have uploaded (a slow network: everyone
// is slow) the configured deadline holds.

export interface Pacing {
  /** The paced deadline is this multiple of the recent pace. */
  readonly multiple: number;
  /** A paced deadline is never shorter than this (ms). */
  readonly minDeadlineMs: number;
  /** Committed rounds whose pace the recent pace is the median of. */
  readonly historyRounds: number;
  /** Rounds with a pace needed before any round is paced. */
  readonly warmupRounds: number;
}

export const DEFAULT_PACING: Pacing = {
  // Four times the median client's time: an honest client up to 4× slower than the median still makes it.
  multiple: 4,
  // Well above any network's round trip and a small model's local steps.
  minDeadlineMs: 10_000,
  historyRounds: 8,
  warmupRounds: 2,
};

function lowerMedian(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/**
 * A round's pace: the lower median over its `sampled` clients of their upload times (ms from the round's
 * start; the clients without one count as never), or null unless more than half of them uploaded.
 */
export function roundPace(uploadMs: readonly number[], sampled: number): number | null {
  if (sampled <= 0 || 2 * uploadMs.length <= sampled) return null;
  return lowerMedian([...uploadMs, ...new Array<number>(sampled - uploadMs.length).fill(Infinity)]);
}

/**
 * When a round closes (ms from its start) once `uploaded` of its `sampled` clients uploaded, given the
 * paces of recent rounds: the paced deadline, or null when the configured deadline holds (no more than
 * half uploaded, or too little history).
 */
export function pacedDeadlineMs(history: readonly number[], uploaded: number, sampled: number, deadlineMs: number, pacing: Pacing): number | null {
  if (2 * uploaded <= sampled || history.length < Math.max(1, pacing.warmupRounds)) return null;
  const recent = lowerMedian(history.slice(-pacing.historyRounds));
  return Math.min(deadlineMs, Math.max(pacing.minDeadlineMs, pacing.multiple * recent));
}
