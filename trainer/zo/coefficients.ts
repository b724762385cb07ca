// The federation's state as a fixed-point coefficient vector C ∈ ℤ^K in units of 2^-16 (A_j = C_j / 65536),
// held as integers in a Float64Array. See docs/zo-engine.md, "Exact path".
import { EXACT_LIMIT, ZQ_MAX_ABS } from '../../protocol/exact-range';

/** Units per 1.0 of a real coefficient: C = A · 65536. */
export const COEFFICIENT_UNITS = 65_536;

/** Round half to even of x·65536: a real coefficient (e.g. a sum of projected gradients) onto the grid. */
export function quantizeCoefficient(x: number): number {
  if (!Number.isFinite(x)) throw new RangeError(`cannot quantise a non-finite coefficient (${x})`);
  const scaled = x * COEFFICIENT_UNITS; // exact: a power-of-two scale
  const floor = Math.floor(scaled);
  const diff = scaled - floor;
  let q = floor;
  if (diff > 0.5 || (diff === 0.5 && floor % 2 !== 0)) q = floor + 1;
  if (!Number.isSafeInteger(q)) throw new RangeError(`coefficient ${x} is outside the exact integer range`);
  return q === 0 ? 0 : q; // no negative zero on the grid
}

export function coefficientToReal(c: number): number {
  return c / COEFFICIENT_UNITS;
}

export function quantizeCoefficients(reals: ArrayLike<number>): Float64Array {
  const out = new Float64Array(reals.length);
  for (let j = 0; j < reals.length; j++) out[j] = quantizeCoefficient(reals[j]);
  return out;
}

export function coefficientsToReals(c: Float64Array): Float64Array {
  return c.map(coefficientToReal);
}

export function createCoefficients(k: number): Float64Array {
  if (!Number.isInteger(k) || k <= 0) throw new RangeError(`number of seeds must be a positive integer, got ${k}`);
  return new Float64Array(k);
}

function checkedInteger(v: number, what: string): number {
  if (!Number.isSafeInteger(v)) throw new RangeError(`${what} is not an exact integer coefficient (${v})`);
  return v;
}

function sameLength(a: Float64Array, b: Float64Array): void {
  if (a.length !== b.length) throw new RangeError(`coefficient vectors differ in length (${a.length} vs ${b.length})`);
}

export function addCoefficients(a: Float64Array, b: Float64Array): Float64Array {
  sameLength(a, b);
  return a.map((v, j) => checkedInteger(v + b[j], `C[${j}]`));
}

export function subtractCoefficients(a: Float64Array, b: Float64Array): Float64Array {
  sameLength(a, b);
  return a.map((v, j) => checkedInteger(v - b[j], `C[${j}]`));
}

/** A sparse change of coefficients: parallel arrays of seed indices and integer deltas. */
export interface CoefficientDelta {
  readonly seeds: Uint32Array;
  readonly deltas: Float64Array;
}

/** The entries where `to` differs from `from`: what a replica at `from` must apply to reach `to`. */
export function coefficientDelta(from: Float64Array, to: Float64Array): CoefficientDelta {
  sameLength(from, to);
  const seeds: number[] = [];
  const deltas: number[] = [];
  for (let j = 0; j < to.length; j++) {
    const d = checkedInteger(to[j] - from[j], `ΔC[${j}]`);
    if (d !== 0) {
      seeds.push(j);
      deltas.push(d);
    }
  }
  return { seeds: Uint32Array.from(seeds), deltas: Float64Array.from(deltas) };
}

/**
 * max|Zq| · Σ|C_j| must stay below 2^53 so every product and partial sum of S is an exact integer.
 * `sumAbsCoefficients` is Σ|C_j| in units (for an update, the sum over what is already applied plus
 * the change, which bounds every intermediate value of S).
 */
export function assertWithinExactBound(sumAbsCoefficients: number, what = 'coefficient vector'): void {
  if (!(ZQ_MAX_ABS * sumAbsCoefficients < EXACT_LIMIT)) {
    throw new RangeError(
      `${what} exceeds the exactness bound: max|Zq| · Σ|C_j| = ${ZQ_MAX_ABS} · ${sumAbsCoefficients} ≥ 2^53; ` +
        `Σ|C_j| must stay below ${Math.floor(EXACT_LIMIT / ZQ_MAX_ABS)} units (${(EXACT_LIMIT / ZQ_MAX_ABS / COEFFICIENT_UNITS).toFixed(0)} in Σ|A_j|)`,
    );
  }
}

/** Remaining Σ|C_j| budget in units before the exactness bound is reached. */
export function exactBoundHeadroom(sumAbsCoefficients: number): number {
  return Math.max(0, Math.ceil(EXACT_LIMIT / ZQ_MAX_ABS) - 1 - sumAbsCoefficients);
}
