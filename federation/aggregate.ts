// Round aggregation: A_j += Σ_i w_i · (Σ of client i's g for seed j), and its quantization to the
// integer coefficient grid with error feedback so that nothing is lost in the long run.
import { COEFFICIENT_SCALE, roundHalfEven, type SeedGradient, type Weighting } from '../protocol';
/** Signed mantissa width targeted by each round's change: the largest |m| fits this many bits. */
export const DEFAULT_MANTISSA_BITS = 12;

export interface ClientContribution {
  readonly examples: number;
  readonly pairs: readonly SeedGradient[];
}

/**
 * w_i of each contributor: examples_i / Σ examples (or 1/n with 'equal', or when every contributor
 * reports 0 examples). They sum to 1 over the contributors, up to the rounding of each division.
 */
export function aggregationWeights(contributions: readonly ClientContribution[], weighting: Weighting): Float64Array {
  const totalExamples = contributions.reduce((s, c) => s + c.examples, 0);
  const byExamples = weighting === 'examples' && totalExamples > 0;
  return Float64Array.from(contributions, (c) => (byExamples ? c.examples / totalExamples : 1 / contributions.length));
}

/** ΔA over K seeds, in g-units: Σ_i w_i · (Σ of client i's g for seed j). */
export function aggregateContributions(contributions: readonly ClientContribution[], k: number, weighting: Weighting): Float64Array {
  const delta = new Float64Array(k);
  const weights = aggregationWeights(contributions, weighting);
  contributions.forEach((c, i) => {
    const w = weights[i];
    if (w === 0) return;
    for (const p of c.pairs) delta[p.seed] += w * p.g;
  });
  return delta;
}

/**
 * ΔA with a robust aggregate per seed: where at least `medianFrom` contributors name seed j, ΔA_j =
 * W_j × the median of their sums G_ij (W_j = Σ of their weights), so contributors fewer than half of
 * those naming it cannot move it beyond the others' values; elsewhere Σ_i w_i·G_ij as
 * aggregateContributions. With `medianFrom` = Infinity it is aggregateContributions bit for bit.
 */
export function robustAggregate(contributions: readonly ClientContribution[], k: number, weighting: Weighting, medianFrom: number): Float64Array {
  if (!Number.isFinite(medianFrom)) return aggregateContributions(contributions, k, weighting);
  const weights = aggregationWeights(contributions, weighting);
  // How many contributors (with weight) name each seed.
  const naming = new Int32Array(k);
  const lastSeen = new Int32Array(k).fill(-1);
  contributions.forEach((c, i) => {
    if (weights[i] === 0) return;
    for (const p of c.pairs) {
      if (lastSeen[p.seed] === i) continue;
      lastSeen[p.seed] = i;
      naming[p.seed]++;
    }
  });
  const delta = new Float64Array(k);
  // Seeds named by enough contributors: each contributor's sum in its slot of `values`, and the sum of their weights.
  const offset = new Int32Array(k + 1);
  for (let j = 0; j < k; j++) offset[j + 1] = offset[j] + (naming[j] >= medianFrom ? naming[j] : 0);
  const values = new Float64Array(offset[k]);
  const filled = new Int32Array(k);
  const weightOf = new Float64Array(k);
  const scratch = new Float64Array(k);
  const touched: number[] = [];
  contributions.forEach((c, i) => {
    const w = weights[i];
    if (w === 0) return;
    touched.length = 0;
    for (const p of c.pairs) {
      // Seeds named by fewer: pair by pair in contributor order, as aggregateContributions adds them.
      if (naming[p.seed] < medianFrom) delta[p.seed] += w * p.g;
      else {
        if (lastSeen[p.seed] !== -2 - i) {
          lastSeen[p.seed] = -2 - i;
          touched.push(p.seed);
          scratch[p.seed] = 0;
        }
        scratch[p.seed] += p.g;
      }
    }
    for (const seed of touched) {
      values[offset[seed] + filled[seed]++] = scratch[seed];
      weightOf[seed] += w;
    }
  });
  for (let j = 0; j < k; j++) {
    const n = offset[j + 1] - offset[j];
    if (n === 0) continue;
    const sorted = values.subarray(offset[j], offset[j + 1]).sort();
    delta[j] = weightOf[j] * (n % 2 === 1 ? sorted[n >> 1] : (sorted[(n >> 1) - 1] + sorted[n >> 1]) / 2);
  }
  return delta;
}

export interface QuantizedChange {
  /** Integer ΔC (units of 2^-16), every entry a multiple of 2^exponent. */
  readonly change: Float64Array;
  readonly exponent: number;
  /** What the grid could not carry this round; added to the next round's change. */
  readonly residual: Float64Array;
}

/**
 * x = ΔA·2^16 + residual; picks the smallest step 2^e (e ≥ 0, so C stays integer) with which the
 * largest |x| rounds to a mantissa of `mantissaBits` signed bits, rounds half to even and keeps the
 * remainder as the new residual.
 */
export function quantizeWithFeedback(deltaA: Float64Array, residual: Float64Array, mantissaBits = DEFAULT_MANTISSA_BITS): QuantizedChange {
  const k = deltaA.length;
  const x = new Float64Array(k);
  let maxAbs = 0;
  for (let j = 0; j < k; j++) {
    x[j] = deltaA[j] * COEFFICIENT_SCALE + residual[j];
    maxAbs = Math.max(maxAbs, Math.abs(x[j]));
  }
  const maxMantissa = 2 ** (mantissaBits - 1) - 1;
  let exponent = 0;
  while (maxAbs / 2 ** exponent > maxMantissa && exponent < 52) exponent++;
  const step = 2 ** exponent;
  const change = new Float64Array(k);
  const nextResidual = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    change[j] = roundHalfEven(x[j] / step) * step;
    nextResidual[j] = x[j] - change[j];
  }
  return { change, exponent, residual: nextResidual };
}
