// Bounds on what one upload can do to a round: its |g| at a multiple of the round's median |g| (and an
// optional absolute bound), its example count at a multiple of the round's lower median and an absolute
// cap. So one client claiming g = 3e38 or 2^32 − 1 examples moves the round no more than a few honest
// clients would; Pro importance keeps its own ±1000 clip (importance.ts) on top.
import type { ClientContribution } from './aggregate';

export interface Robustness {
  /** |g| is clipped at this multiple of the round's median |g| (Infinity: off). */
  readonly gClipMultiple: number;
  /** |g| is clipped here in any case (Infinity: off). */
  readonly maxAbsG: number;
  /** An upload's example count is capped here (Infinity: off). */
  readonly maxExamples: number;
  /** …and at this multiple of the round's lower median example count (Infinity: off). */
  readonly examplesMedianMultiple: number;
}

export const DEFAULT_ROBUSTNESS: Robustness = {
  gClipMultiple: 64,
  maxAbsG: Infinity,
  maxExamples: 1_000_000,
  examplesMedianMultiple: 4,
};

/** The lower median (of an even count, the smaller middle value): one outlier of two cannot move it. */
export function lowerMedian(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

export interface BoundedRound<C extends ClientContribution> {
  /** The contributions with g and examples bounded, in the same order. */
  readonly contributions: (Omit<C, 'examples' | 'pairs'> & ClientContribution)[];
  /** The |g| bound applied (Infinity: none). */
  readonly gBound: number;
  readonly examplesBound: number;
  /** g values that were clipped. */
  readonly clipped: number;
}

export function boundContributions<C extends ClientContribution>(list: readonly C[], o: Robustness): BoundedRound<C> {
  const absG = list.flatMap((c) => c.pairs.map((p) => Math.abs(p.g)));
  const medianG = lowerMedian(absG);
  // A zero median (most g exactly 0) gives no scale; then only the absolute bound applies.
  const gBound = Math.min(o.maxAbsG, medianG > 0 ? o.gClipMultiple * medianG : Infinity);
  const medianExamples = lowerMedian(list.map((c) => c.examples));
  const examplesBound = Math.min(o.maxExamples, medianExamples > 0 ? o.examplesMedianMultiple * medianExamples : Infinity);
  let clipped = 0;
  const contributions = list.map((c) => ({
    ...c,
    examples: Math.min(c.examples, examplesBound),
    pairs: c.pairs.map((p) => {
      if (Math.abs(p.g) <= gBound) return p;
      clipped++;
      return { seed: p.seed, g: Math.sign(p.g) * gBound };
    }),
  }));
  return { contributions, gBound, examplesBound, clipped };
}
