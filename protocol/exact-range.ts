// The replicas' exact range (docs/zo-engine.md, "Exact path"): a replica adds max|Zq|-bounded integer
// products into a float64 accumulator, so every product and partial sum stays exact while
// max|Zq| · Σ|C_j| < 2^53. The server refuses a round that would leave this range and every replica
// checks it before applying a change: both sides hold these numbers, so they live with the protocol.

import type { Generator } from './messages';

/** Every product and partial sum of a replica's exact accumulator must stay below this. */
export const EXACT_LIMIT = 2 ** 53;

/**
 * max |Zq| of the generator's table (trainer/zo/generator.ts), pinned here so that the server needs no
 * table; test/unit/zo-generator.test.ts holds it to the table's real maximum.
 */
export const ZQ_MAX_ABS = 17_715;

/**
 * max |u_r·v_c| of the rank-1 generator (trainer/zo/rank1.ts): the square of its factor table's maximum,
 * 277 (scale 64). Held to the table by the same test.
 */
export const RANK1_MAX_ABS = 277 * 277;

/** The largest integer value (z·4096) a generator puts on one parameter: what the exact range scales with. */
export function maxTableValue(generator: Generator): number {
  return generator === 'rank1' ? RANK1_MAX_ABS : ZQ_MAX_ABS;
}

/** Σ|v_j|: of a coefficient vector (in units), what the exact range bounds. */
export function sumAbs(values: ArrayLike<number>): number {
  let s = 0;
  for (let j = 0; j < values.length; j++) s += Math.abs(values[j]);
  return s;
}
