// The federation's state as a fixed-point coefficient vector C ∈ ℤ^K in units of 2^-16
// (A_j = C_j / COEFFICIENT_SCALE), held as integers in a Float64Array. See docs/zo-engine.md, "Exact path".
import { COEFFICIENT_SCALE, EXACT_LIMIT, maxTableValue, roundHalfEven, type Generator } from '../../protocol';

/** A real coefficient (e.g. a sum of projected gradients) onto the grid: x·2^16, rounded half to even. */
export function quantizeCoefficient(x: number): number {
  if (!Number.isFinite(x)) throw new RangeError(`cannot quantize a non-finite coefficient (${x})`);
  const q = roundHalfEven(x * COEFFICIENT_SCALE); // the product is exact: a power-of-two scale
  if (!Number.isSafeInteger(q)) throw new RangeError(`coefficient ${x} is outside the exact integer range`);
  return q === 0 ? 0 : q; // no negative zero on the grid
}

export function coefficientToReal(c: number): number {
  return c / COEFFICIENT_SCALE;
}

/**
 * max|value| · Σ|C_j| must stay below 2^53 so every product and partial sum of S is an exact integer
 * (value: the generator's integer z·4096, Zq for 'iid'). `sumAbsCoefficients` is Σ|C_j| in units (for an
 * update, the sum over what is already applied plus the change, which bounds every intermediate value of S).
 */
export function assertWithinExactBound(sumAbsCoefficients: number, what = 'coefficient vector', generator: Generator = 'iid'): void {
  const max = maxTableValue(generator);
  if (!(max * sumAbsCoefficients < EXACT_LIMIT)) {
    throw new RangeError(
      `${what} exceeds the exactness bound: max|value| · Σ|C_j| = ${max} · ${sumAbsCoefficients} ≥ 2^53; ` +
        `Σ|C_j| must stay below ${Math.floor(EXACT_LIMIT / max)} units (${(EXACT_LIMIT / max / COEFFICIENT_SCALE).toFixed(0)} in Σ|A_j|)`,
    );
  }
}
