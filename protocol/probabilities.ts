// FedKSeed-Pro seed probabilities. The server ships the min–max-normalised importance quantized to
// `bits` bits per seed; p is *defined* as the softmax of those levels, computed here with only
// correctly rounded IEEE operations (+, ×, ÷ in a fixed order), so the server and every client, on any
// platform, hold bit-for-bit the same p. (Math.exp is not required to be correctly rounded.)

export const DEFAULT_PROBABILITY_BITS = 6;

export interface QuantizedProbabilities {
  readonly bits: number;
  /** One level per seed in 0 .. 2^bits − 1. */
  readonly levels: Uint8Array;
}

/** exp(x) for x ∈ [0, 1] by its Taylor series, 24 terms in a fixed order: portable to the last bit. */
export function portableExpUnit(x: number): number {
  let term = 1;
  let sum = 1;
  for (let n = 1; n <= 24; n++) {
    term = (term * x) / n;
    sum += term;
  }
  return sum;
}

/** Min–max normalises `importance` and rounds each value to one of 2^bits levels. */
export function quantizeImportance(importance: Float64Array, bits = DEFAULT_PROBABILITY_BITS): QuantizedProbabilities {
  const top = 2 ** bits - 1;
  let min = Infinity;
  let max = -Infinity;
  for (const v of importance) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const levels = new Uint8Array(importance.length);
  const span = max - min;
  if (span > 0 && Number.isFinite(span)) {
    for (let j = 0; j < importance.length; j++) levels[j] = Math.round(((importance[j] - min) / span) * top);
  }
  return { bits, levels };
}

/** p_j = exp(level_j / (2^bits − 1)) / Σ_k exp(level_k / (2^bits − 1)), summed in index order. */
export function probabilitiesFromLevels(q: QuantizedProbabilities): Float64Array {
  const top = 2 ** q.bits - 1;
  const table = new Float64Array(top + 1);
  for (let l = 0; l <= top; l++) table[l] = portableExpUnit(l / top);
  let total = 0;
  for (const l of q.levels) total += table[l];
  const p = new Float64Array(q.levels.length);
  for (let j = 0; j < p.length; j++) p[j] = table[q.levels[j]] / total;
  return p;
}
