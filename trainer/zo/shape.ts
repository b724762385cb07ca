// The perturbation's shape: how z is scaled tensor by tensor. The federation decides it (FederationConfig
// .shape, carried in WELCOME), every replica derives the same multipliers from the base weights w0, so the
// model stays w0 + Σ_j C_j·(m ⊙ z_j) and replay stays exact:
//   'isotropic'   m_t = 1 for every tensor: z ~ N(0, I), the paper's method.
//   'tensor-rms'  m_t = the power of two nearest (in log scale) to rms(w0_t) / rms(w0): each tensor is
//                 perturbed in proportion to its own scale (a LayerNorm gain near 1 far more than an
//                 embedding entry near 0.02), which lowers the estimator's variance where it is wasted
//                 (docs/results.md, "Learning faster").
// Multipliers are powers of two so that scaling a pass's step by m_t is exact in float32: a kernel's
// fl32(s·m_t/4096)·Zq equals the isotropic pass's value times m_t bit for bit, and the exact path's
// fl64(−η·2⁻²⁸·m_t·S) is the same number on every platform. Only IEEE +, ×, / and comparisons with powers of
// two decide the exponent (no Math.log2, whose last bit may differ between platforms).
import type { PerturbationShape } from '../../protocol';

export type { PerturbationShape };

/** Multiplier exponents are clamped to ±SHAPE_EXPONENT_LIMIT: no tensor is perturbed 2⁶× more or less than the mean. */
export const SHAPE_EXPONENT_LIMIT = 6;

/** What the shape needs of each tensor: its element count and the sum of its base values' squares. */
export interface TensorEnergy {
  readonly size: number;
  /** Σ w0², summed in float64 in index order. */
  readonly sumSquares: number;
}

/** Σ x² of a tensor's base values, in float64, in index order (the same number on every platform). */
export function sumSquares(values: Float32Array): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i] * values[i];
  return s;
}

/**
 * The exponent e with 2^(2e−1) ≤ ratio² < 2^(2e+1) (2^e is the power of two nearest to ratio in log scale),
 * clamped to ±SHAPE_EXPONENT_LIMIT; a zero ratio takes the lower limit.
 */
export function nearestPowerOfTwoExponent(ratioSquared: number): number {
  if (!(ratioSquared > 0)) return -SHAPE_EXPONENT_LIMIT;
  for (let e = -SHAPE_EXPONENT_LIMIT; e < SHAPE_EXPONENT_LIMIT; e++) {
    if (ratioSquared < 2 ** (2 * e + 1)) return e;
  }
  return SHAPE_EXPONENT_LIMIT;
}

/** Per-tensor multipliers m_t (powers of two), in the order of `tensors`. */
export function shapeMultipliers(shape: PerturbationShape, tensors: readonly TensorEnergy[]): Float64Array {
  const m = new Float64Array(tensors.length).fill(1);
  if (shape === 'isotropic') return m;
  let total = 0;
  let count = 0;
  for (const t of tensors) {
    total += t.sumSquares;
    count += t.size;
  }
  const meanSquare = count > 0 ? total / count : 0;
  if (!(meanSquare > 0)) return m; // all-zero weights: nothing to scale by
  tensors.forEach((t, i) => {
    const ratioSquared = t.size > 0 ? t.sumSquares / t.size / meanSquare : 0;
    m[i] = 2 ** nearestPowerOfTwoExponent(ratioSquared);
  });
  return m;
}
