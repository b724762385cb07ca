// Bounds on what one upload can do to a round, from state the round's uploaders cannot set:
//   * its |g| are clipped at gClipMultiple × a scale kept across rounds: the lower median of the last
//     HISTORY_ROUNDS committed rounds' |g| statistics (each the lower median over the round's sampled
//     clients of each one's median |g|, a client without an upload counting 0), never 0;
//   * its Σ|g| at τ × normClipMultiple × that scale (its g scaled down together, so its direction stays);
//   * its example count at examplesMedianMultiple × the same kind of median of the claims (and maxExamples);
//   * one seed counts at most repeatCap(τ, p_max) times in one upload (an honest upload, drawing τ seeds
//     with probabilities p, holds more with negligible probability); the repeats beyond it are dropped;
//   * a seed named by seedMedianClients clients or more changes by the median of their contributions
//     (aggregate.ts, robustAggregate) instead of their sum.
// A round's statistics are taken after its bounds and kept in its record (RoundAfter.robust), so a
// restarted server, a gateway and a restored backup rebuild the same history; colluders fewer than half
// of a round's sampled clients cannot move a statistic outside the honest clients' values, and a round
// that has colluders as most of its uploads (an honest client missed the deadline) is still bounded by
// the history, not by itself. The first round, with no history, takes its own statistics.
import type { SeedGradient } from '../protocol';
import type { ClientContribution } from './aggregate';

export interface Robustness {
  /** |g| is clipped at this multiple of the scale kept across rounds (Infinity: off). */
  readonly gClipMultiple: number;
  /** An upload's Σ|g| is bounded at τ × this multiple of the scale, its g scaled down together (Infinity: off). */
  readonly normClipMultiple: number;
  /** |g| is clipped here in any case (Infinity: off). */
  readonly maxAbsG: number;
  /** An upload's example count is capped here (Infinity: off). */
  readonly maxExamples: number;
  /** …and at this multiple of the historical median claim (Infinity: off). */
  readonly examplesMedianMultiple: number;
  /** Repeats of one seed an upload may hold beyond ⌈τ·p_max + 4·√(τ·p_max)⌉ (Infinity: off). */
  readonly repeatSlack: number;
  /** A seed named by at least this many clients changes by W_j × the median of their sums (Infinity: off). */
  readonly seedMedianClients: number;
}

export const DEFAULT_ROBUSTNESS: Robustness = {
  gClipMultiple: 16,
  normClipMultiple: 4,
  maxAbsG: Infinity,
  maxExamples: 1_000_000,
  examplesMedianMultiple: 4,
  repeatSlack: 4,
  seedMedianClients: 3,
};

/** Committed rounds whose statistics make the scales of the next round. */
export const HISTORY_ROUNDS = 16;

/** A round's statistics, as its record keeps them: what later rounds' scales are medians of (0: none). */
export interface RoundStatistics {
  /** Lower median over the round's sampled clients of each one's median |g| after the bounds (no upload: 0). */
  readonly absG: number;
  /** Lower median over the round's sampled clients of their example counts after the bounds (no upload: 0). */
  readonly examples: number;
}

/** The lower median (of an even count, the smaller middle value): one outlier of two cannot move it. */
export function lowerMedian(values: ArrayLike<number>): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** The median (of an even count, the mean of the two middle values). */
export function median(values: ArrayLike<number>): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * The most times one seed may appear in an upload of τ pairs drawn with largest seed probability
 * `pMax`: ⌈λ + 4√λ⌉ + slack with λ = τ·pMax (an honest upload exceeds it with probability below 10⁻⁵
 * per seed at slack 4).
 */
export function repeatCap(tau: number, pMax: number, slack: number): number {
  if (!Number.isFinite(slack)) return Infinity;
  const lambda = tau * pMax;
  return Math.ceil(lambda + 4 * Math.sqrt(lambda)) + slack;
}

/** The scales of a round from the statistics of the committed rounds before it (oldest first): NaN where none is known. */
export function historyScales(history: readonly RoundStatistics[]): { readonly absG: number; readonly examples: number } {
  const recent = history.slice(-HISTORY_ROUNDS);
  const positive = (xs: number[]): number => {
    const kept = xs.filter((x) => x > 0 && Number.isFinite(x));
    return kept.length === 0 ? NaN : lowerMedian(kept);
  };
  return { absG: positive(recent.map((s) => s.absG)), examples: positive(recent.map((s) => s.examples)) };
}

export interface BoundedUpload<C extends ClientContribution> {
  /** The contribution with repeats dropped, g clipped and examples capped. */
  readonly contribution: Omit<C, 'examples' | 'pairs'> & ClientContribution;
  /** g values clipped. */
  readonly clipped: number;
  /** The factor its g were scaled by to bring its Σ|g| within the bound (1: none). */
  readonly scaledBy: number;
  /** Pairs dropped as repeats of a seed beyond the cap. */
  readonly repeatsDropped: number;
  readonly claimedExamples: number;
}

export interface BoundedRound<C extends ClientContribution> {
  /** The uploads bounded, in the same order. */
  readonly uploads: BoundedUpload<C>[];
  /** The scale of |g| and of the claims the bounds were taken from (NaN: none known). */
  readonly scales: { readonly absG: number; readonly examples: number };
  /** The |g| bound applied (Infinity: none). */
  readonly gBound: number;
  /** The bound on one upload's Σ|g| (Infinity: none). */
  readonly normBound: number;
  readonly examplesBound: number;
  readonly repeatCap: number;
  /** What this round adds to the history. */
  readonly statistics: RoundStatistics;
}

export interface RoundBoundsInput<C extends ClientContribution> {
  readonly uploads: readonly C[];
  /** Sampled clients without an upload: each counts 0 in the round's statistics. */
  readonly missing: number;
  /** Statistics of the committed rounds before this one, oldest first. */
  readonly history: readonly RoundStatistics[];
  /** Most times one seed may appear in an upload. */
  readonly repeatCap: number;
  /** τ, the pairs an upload may hold. */
  readonly tau: number;
}

/** Keeps at most `cap` pairs of each seed, in upload order; `counts` is zero on entry and on return. */
function dropRepeats(pairs: readonly SeedGradient[], cap: number, counts: Uint32Array): { pairs: readonly SeedGradient[]; dropped: number } {
  if (!Number.isFinite(cap) || pairs.length <= cap) return { pairs, dropped: 0 };
  let dropped = 0;
  for (const p of pairs) if (++counts[p.seed] > cap) dropped++;
  for (const p of pairs) counts[p.seed] = 0;
  if (dropped === 0) return { pairs, dropped };
  const kept: SeedGradient[] = [];
  for (const p of pairs) if (++counts[p.seed] <= cap) kept.push(p);
  for (const p of pairs) counts[p.seed] = 0;
  return { pairs: kept, dropped };
}

/**
 * The scale of a round: the history's when it has one; else (the first rounds) the round's own lower
 * median over its sampled clients, missing ones counted 0; else the lower median of the positive values
 * uploaded (so it is 0 only when every value is). NaN: nothing positive anywhere.
 */
function scaleOf(fromHistory: number, ownWithMissing: () => number, ownValues: () => number[]): number {
  if (fromHistory > 0) return fromHistory;
  const own = ownWithMissing();
  if (own > 0) return own;
  const positive = ownValues().filter((x) => x > 0 && Number.isFinite(x));
  return positive.length > 0 ? lowerMedian(positive) : NaN;
}

/** A statistic as it enters the history: within a factor `multiple` of the scale it was bounded by, so the history moves by at most that factor per half window. */
function clampToScale(x: number, scale: number, multiple: number): number {
  if (!(x > 0) || !(scale > 0) || !Number.isFinite(multiple)) return x > 0 ? x : 0;
  return Math.min(Math.max(x, scale / multiple), scale * multiple);
}

export function boundRound<C extends ClientContribution>(input: RoundBoundsInput<C>, o: Robustness): BoundedRound<C> {
  const { uploads, missing } = input;
  const zeros = new Array<number>(missing).fill(0);
  const history = historyScales(input.history);
  const counts = new Uint32Array(uploads.reduce((m, u) => u.pairs.reduce((n, p) => Math.max(n, p.seed + 1), m), 0));
  const deduped = uploads.map((u) => dropRepeats(u.pairs, input.repeatCap, counts));
  const medianAbsG = (pairs: readonly SeedGradient[]): number => {
    if (pairs.length === 0) return 0;
    const abs = new Float64Array(pairs.length);
    for (let i = 0; i < pairs.length; i++) abs[i] = Math.abs(pairs[i].g);
    return abs.sort()[Math.floor((abs.length - 1) / 2)];
  };
  const absGScale = scaleOf(
    history.absG,
    () => lowerMedian([...deduped.map((d) => medianAbsG(d.pairs)), ...zeros]),
    () => deduped.flatMap((d) => d.pairs.map((p) => Math.abs(p.g))),
  );
  const gBound = Math.min(o.maxAbsG, absGScale > 0 ? o.gClipMultiple * absGScale : Infinity);
  const examplesScale = scaleOf(
    history.examples,
    () => lowerMedian([...uploads.map((u) => u.examples), ...zeros]),
    () => uploads.map((u) => u.examples),
  );
  const examplesBound = Math.min(o.maxExamples, examplesScale > 0 ? o.examplesMedianMultiple * examplesScale : Infinity);
  const normBound = absGScale > 0 ? input.tau * o.normClipMultiple * absGScale : Infinity;
  const bounded = uploads.map((u, i): BoundedUpload<C> => {
    let pairs = deduped[i].pairs;
    let clipped = 0;
    let norm = 0;
    for (const p of pairs) {
      const a = Math.abs(p.g);
      if (a > gBound) clipped++;
      norm += Math.min(a, gBound);
    }
    if (clipped > 0) pairs = pairs.map((p) => (Math.abs(p.g) <= gBound ? p : { seed: p.seed, g: Math.sign(p.g) * gBound }));
    let scaledBy = 1;
    if (norm > normBound) {
      scaledBy = normBound / norm;
      pairs = pairs.map((p) => ({ seed: p.seed, g: p.g * scaledBy }));
    }
    return {
      contribution: { ...u, examples: Math.min(u.examples, examplesBound), pairs },
      clipped,
      scaledBy,
      repeatsDropped: deduped[i].dropped,
      claimedExamples: u.examples,
    };
  });
  const absGAfter = bounded.map((b) => medianAbsG(b.contribution.pairs));
  const statistics: RoundStatistics = {
    absG: clampToScale(lowerMedian([...absGAfter, ...zeros]), absGScale, o.gClipMultiple),
    examples: clampToScale(lowerMedian([...bounded.map((b) => b.contribution.examples), ...zeros]), examplesScale, o.examplesMedianMultiple),
  };
  return { uploads: bounded, scales: { absG: absGScale, examples: examplesScale }, gBound, normBound, examplesBound, repeatCap: input.repeatCap, statistics };
}
