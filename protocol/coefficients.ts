// The federation's state is an integer coefficient vector C ∈ ℤ^K in units of 2^-16 (docs/zo-engine.md).
// Changes travel as a power-of-two step 2^e and integer mantissas, so ΔC_j = m_j · 2^e exactly.
import { ErrorCode, ProtocolError } from './errors';

/** Units of C per g-unit: C_j = A_j · 2^16, so one unit of C is 2^-16 (docs/zo-engine.md, "Exact path"). */
export const COEFFICIENT_SCALE = 2 ** 16;

/**
 * x rounded to the nearest integer, ties to the even one: how a real coefficient goes onto the grid (the
 * server's error feedback, a local run's checkpoint) and how ONNX QuantizeLinear rounds.
 */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** ΔC_j = mantissas[j] · 2^exponent, dense over the K seeds. */
export interface CoefficientDelta {
  readonly exponent: number;
  readonly mantissas: Float64Array;
}

/** The same change as (seed index, integer value) pairs, zeros left out: what a replica applies. */
export interface SparseCoefficientDelta {
  readonly indices: Uint32Array;
  readonly values: Float64Array;
}

function trailingZeros(v: number): number {
  let n = 0;
  let x = Math.abs(v);
  while (x % 2 === 0 && n < 52) {
    x /= 2;
    n++;
  }
  return n;
}

/** Factors a dense integer change into the largest common power-of-two step and its mantissas. */
export function factorDelta(values: Float64Array): CoefficientDelta {
  let exponent = 52;
  let any = false;
  for (const v of values) {
    if (!Number.isSafeInteger(v)) throw new ProtocolError(ErrorCode.Malformed, `coefficient change ${v} is not a safe integer`);
    if (v !== 0) {
      any = true;
      exponent = Math.min(exponent, trailingZeros(v));
    }
  }
  if (!any) exponent = 0;
  const scale = 2 ** exponent;
  const mantissas = new Float64Array(values.length);
  for (let j = 0; j < values.length; j++) mantissas[j] = values[j] / scale;
  return { exponent, mantissas };
}

export function expandDelta(delta: CoefficientDelta): Float64Array {
  const scale = 2 ** delta.exponent;
  return delta.mantissas.map((m) => m * scale);
}

export function toSparse(delta: CoefficientDelta): SparseCoefficientDelta {
  const scale = 2 ** delta.exponent;
  let n = 0;
  for (const m of delta.mantissas) if (m !== 0) n++;
  const indices = new Uint32Array(n);
  const values = new Float64Array(n);
  let k = 0;
  delta.mantissas.forEach((m, j) => {
    if (m !== 0) {
      indices[k] = j;
      values[k++] = m * scale;
    }
  });
  return { indices, values };
}
