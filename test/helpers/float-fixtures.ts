// Deterministic inputs and bit-level comparisons shared by the kernel, parameter-store and
// perturbation-graph tests.
import assert from 'node:assert/strict';
import type { TensorInit } from '../../trainer/zo/parameters';

/** Pseudo-random float32 values of mixed magnitudes, with a negative zero and a subnormal. */
export function mixedWeights(n: number, salt: number): Float32Array {
  const w = new Float32Array(n);
  let h = salt >>> 0;
  for (let i = 0; i < n; i++) {
    h = (Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    w[i] = ((h / 2 ** 32) * 2 - 1) * 2 ** ((h & 31) - 20);
  }
  if (n > 3) {
    w[1] = -0;
    w[2] = 1e-40;
  }
  return w;
}

/** Fails at the first element whose float32 bits differ (so -0 vs 0 and NaN payloads count). */
export function assertSameBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) assert.fail(`${what}: element ${i} differs (${got[i]} vs ${want[i]})`);
  }
}

/**
 * A small model of odd shapes (tails of every length), given out of name order; `scale` stretches the
 * large tensors, `seed` changes the values (uniform in ±0.1).
 */
export function oddShapedModel(scale = 1, seed = 12345): TensorInit[] {
  const shapes: [string, number[]][] = [
    ['h.1.mlp.weight', [13 * scale, 7]],
    ['wte', [50 * scale, 9]],
    ['h.0.ln.bias', [9]],
    ['h.0.attn.weight', [9 * scale, 27]],
    ['Z_last', [3]],
    ['h.1.ln.bias', [1]],
  ];
  let h = seed;
  return shapes.map(([name, dims]) => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) {
      h = (Math.imul(h, 1103515245) + 12345) >>> 0;
      data[i] = (h / 2 ** 32 - 0.5) * 0.2;
    }
    return { name, dims, data };
  });
}
