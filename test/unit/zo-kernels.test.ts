import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sumAbs } from '../../protocol';
import { assertWithinExactBound } from '../../trainer/zo/coefficients';
import { ZQ, seedKey, zIndex } from '../../trainer/zo/generator';
import type { PerturbationKernels } from '../../trainer/zo/kernels';
import { JsKernels } from '../../trainer/zo/kernels-js';
import { WasmKernels } from '../../trainer/zo/kernels-wasm';
import { wasmSimdSupported } from '../../trainer/zo/wasm/load';
import { assertSameBits, mixedWeights } from '../helpers/float-fixtures';

const js = new JsKernels();
const wasm = new WasmKernels();
// One resident region inside the WASM memory, carved into test tensors (the ParameterSet's layout),
// and a z store next to it.
const resident = wasm.allocateResidentViews(1 << 18, 1 << 18);
if (!resident?.zStore) throw new Error('no resident region');
const region = resident.weights;
const zRegion = resident.zStore;

const LENGTHS = [1, 2, 7, 8, 9, 15, 16, 17, 31, 1000, 8191, 8192, 8193, 20_003];
const OFFSETS = [0, 8, 2, 4096, 123_456, 2 ** 31 - 8, 2 ** 32 - 40_000];

test('WebAssembly SIMD validates on this engine', () => {
  assert.equal(wasmSimdSupported(), true);
  assert.ok(!(region.buffer instanceof SharedArrayBuffer));
  assert.equal(region.buffer, wasm.exports.memory.buffer);
});

test('perturb writes exactly s·Zq[index(key, offset + t)] onto zeros, in every kernel and placement', () => {
  const key = seedKey(77, 5);
  for (const offset of OFFSETS) {
    const n = 1003;
    const expected = new Float32Array(n);
    for (let t = 0; t < n; t++) expected[t] = ZQ[zIndex(key, offset + t)];
    const outside = new Float32Array(n);
    const inside = region.subarray(16, 16 + n).fill(0);
    const plain = new Float32Array(n);
    js.perturb(plain, offset, key, 4096);
    wasm.perturb(outside, offset, key, 4096);
    wasm.perturb(inside, offset, key, 4096);
    assertSameBits(plain, expected, `js at ${offset}`);
    assertSameBits(outside, expected, `wasm outside at ${offset}`);
    assertSameBits(inside, expected, `wasm inside at ${offset}`);
  }
});

test('perturb and perturb2 are bit-identical across kernels, lengths, offsets and placements', () => {
  let salt = 1;
  for (const n of LENGTHS) {
    for (const offset of OFFSETS) {
      const F = salt * 2654435761;
      const keyA = seedKey(F, salt);
      const keyB = seedKey(F, salt + 1);
      const base = mixedWeights(n, salt++);
      const s = [5e-4, -1e-3, 3.7, -(2 ** -20)][salt % 4];
      const ref = base.slice();
      js.perturb(ref, offset, keyA, s);
      js.perturb2(ref, offset, keyA, -2 * s, keyB, 0.25 * s);
      const out = base.slice();
      wasm.perturb(out, offset, keyA, s);
      wasm.perturb2(out, offset, keyA, -2 * s, keyB, 0.25 * s);
      assertSameBits(out, ref, `outside, n=${n} offset=${offset}`);
      const start = 8 * (salt % 5);
      const inside = region.subarray(start, start + n);
      inside.set(base);
      wasm.perturb(inside, offset, keyA, s);
      wasm.perturb2(inside, offset, keyA, -2 * s, keyB, 0.25 * s);
      assertSameBits(inside, ref, `inside, n=${n} offset=${offset}`);
    }
  }
});

test('perturb2 equals two perturb passes in its fixed order', () => {
  for (const kernels of [js, wasm] as PerturbationKernels[]) {
    const a = mixedWeights(5001, 9);
    const b = a.slice();
    kernels.perturb2(a, 64, 11, 1e-3, 22, -7e-4);
    kernels.perturb(b, 64, 11, 1e-3);
    kernels.perturb(b, 64, 22, -7e-4);
    assertSameBits(a, b, kernels.name);
  }
});

test("stored-z passes equal the generating passes bit for bit, and the store holds the last seed's Zq", () => {
  let salt = 100;
  for (const n of LENGTHS) {
    for (const offset of OFFSETS) {
      const keyA = seedKey(salt, 1);
      const keyB = seedKey(salt, 2);
      const base = mixedWeights(n, salt++);
      const s = [5e-4, -1e-3, 3.7, -(2 ** -20)][salt % 4];
      const c = 0.37 * s;
      // One ZO step's passes and the next step's first, as the trainer issues them.
      const ref = base.slice();
      js.perturb(ref, offset, keyA, s);
      js.perturb(ref, offset, keyA, -2 * s);
      js.perturb2(ref, offset, keyA, c, keyB, s);
      js.perturb(ref, offset, keyB, -2 * s);
      const start = 8 * (salt % 5);
      const placements: [PerturbationKernels, Float32Array, Int16Array, string][] = [
        [js, base.slice(), new Int16Array(n), 'js'],
        [wasm, base.slice(), zRegion.subarray(start, start + n), 'wasm, weights outside'],
        [wasm, region.subarray(start, start + n), zRegion.subarray(start + 8, start + 8 + n), 'wasm, resident'],
      ];
      for (const [kernels, w, zq, what] of placements) {
        w.set(base);
        kernels.perturbStore(w, zq, offset, keyA, s);
        kernels.perturbStored(w, zq, -2 * s);
        kernels.perturb2Stored(w, zq, offset, c, keyB, s);
        kernels.perturbStored(w, zq, -2 * s);
        assertSameBits(w, ref, `${what}, n=${n} offset=${offset}`);
        for (let t = 0; t < n; t++) {
          if (zq[t] !== ZQ[zIndex(keyB, offset + t)]) assert.fail(`${what}: stored Zq ${t} differs, n=${n} offset=${offset}`);
        }
      }
    }
  }
});

test('a stored-z pass refuses a store of the wrong length or, in WASM, outside its memory', () => {
  assert.throws(() => js.perturbStored(new Float32Array(4), new Int16Array(3), 1), /z store/);
  assert.throws(() => wasm.perturbStored(new Float32Array(4), new Int16Array(4), 1), /inside/);
});

test('an odd offset is refused', () => {
  assert.throws(() => js.perturb(new Float32Array(4), 3, 1, 1), /even/);
  assert.throws(() => wasm.perturb(new Float32Array(4), 3, 1, 1), /even/);
});

/** Exact reference: every term is an integer below 2^53, so plain doubles sum it exactly. */
function referenceSums(n: number, offset: number, keys: Uint32Array, coeffs: Float64Array): Float64Array {
  const S = new Float64Array(n);
  for (let t = 0; t < n; t++) for (let j = 0; j < keys.length; j++) S[t] += coeffs[j] * ZQ[zIndex(keys[j], offset + t)];
  return S;
}

function seeds(m: number, F: number): { keys: Uint32Array; coeffs: Float64Array } {
  const keys = new Uint32Array(m);
  const coeffs = new Float64Array(m);
  for (let j = 0; j < m; j++) {
    keys[j] = seedKey(F, j);
    // Large integer coefficients of both signs (products reach ~2^39)...
    coeffs[j] = ((Math.imul(j + 1, 0x9e3779b1) >>> 0) % 2 ** 25) * (j % 2 === 0 ? 1 : -1);
  }
  // ...within the bound that makes every partial sum exact.
  assertWithinExactBound(sumAbs(coeffs));
  return { keys, coeffs };
}

test('accumulate is exact and identical across kernels, including the seed-batch boundary', () => {
  for (const [n, m, offset] of [
    [37, 3, 0],
    [1000, 64, 2 ** 31 - 8],
    [17, 9000, 4096],
    [8200, 5, 24],
  ] as const) {
    const { keys, coeffs } = seeds(m, n * 31 + m);
    const ref = referenceSums(n, offset, keys, coeffs);
    const a = new Float64Array(n);
    const b = new Float64Array(n);
    js.accumulate(a, offset, keys, coeffs);
    wasm.accumulate(b, offset, keys, coeffs);
    assert.deepEqual(a, ref, `js n=${n} m=${m}`);
    assert.deepEqual(b, ref, `wasm n=${n} m=${m}`);
  }
});

test('accumulate does not depend on the order or grouping of seeds', () => {
  const n = 2051;
  const { keys, coeffs } = seeds(300, 5);
  const once = new Float64Array(n);
  wasm.accumulate(once, 8, keys, coeffs);
  const reversed = new Float64Array(n);
  js.accumulate(reversed, 8, keys.slice().reverse(), coeffs.slice().reverse());
  const inRounds = new Float64Array(n);
  for (let j = 0; j < 300; j += 7) wasm.accumulate(inRounds, 8, keys.subarray(j, j + 7), coeffs.subarray(j, j + 7));
  assert.deepEqual(reversed, once);
  assert.deepEqual(inRounds, once);
});

test('materialize equals fl32(w0 + scale·S) in float64 in both kernels and placements', () => {
  const n = 9001;
  const w0 = mixedWeights(n, 3);
  const { keys, coeffs } = seeds(40, 9);
  const S = new Float64Array(n);
  js.accumulate(S, 0, keys, coeffs);
  const scale = -3e-7 * 2 ** -28;
  const expected = new Float32Array(n);
  for (let t = 0; t < n; t++) {
    const exact = w0[t] + scale * S[t];
    expected[t] = exact;
    // One rounding to float32: within half an ulp of the float64 value.
    const ulp = 2 ** (Math.floor(Math.log2(Math.max(Math.abs(exact), 2 ** -126))) - 23);
    assert.ok(Math.abs(expected[t] - exact) <= ulp / 2);
  }
  const a = new Float32Array(n);
  js.materialize(a, w0, S, scale);
  assertSameBits(a, expected, 'js');
  const b = new Float32Array(n);
  wasm.materialize(b, w0, S, scale);
  assertSameBits(b, expected, 'wasm outside');
  const c = region.subarray(40, 40 + n);
  wasm.materialize(c, w0, S, scale);
  assertSameBits(c, expected, 'wasm inside');
});
