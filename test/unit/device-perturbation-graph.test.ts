// The perturbation as an ONNX graph, run by onnxruntime's CPU provider, gives the same bits as the JS and
// WASM kernels: several keys, offsets (large ones included), odd lengths, scales, and the fused two-seed pass,
// in both forms of the hash (bitwise ops, and the integer arithmetic + xor tables WebGPU runs).
// FEDKSEED_DEVICE_PROVIDERS=webgpu (or cuda, dml…) runs the same checks on that provider, in the form that
// provider runs on its device (docs/gpu.md).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { keyBytes } from '../../trainer/device/arithmetic-hash';
import { buildPerturbationGraph, hashFormFor, PerturbationGraphSession, type HashForm, type SeedTerm } from '../../trainer/device/perturbation-graph';
import { seedKey } from '../../trainer/zo/generator';
import { JsKernels } from '../../trainer/zo/kernels-js';
import { WasmKernels } from '../../trainer/zo/kernels-wasm';
import { assertSameBits, mixedWeights } from '../helpers/float-fixtures';

const js = new JsKernels();
const wasm = new WasmKernels();
const PROVIDER = process.env.FEDKSEED_DEVICE_PROVIDERS || 'cpu';
const FORMS: HashForm[] = PROVIDER === 'cpu' ? ['bitwise', 'arithmetic'] : [hashFormFor(PROVIDER)];

const LENGTHS = [1, 2, 3, 17, 1001, 8193, 20_003];
const OFFSETS = [0, 2, 4096, 123_456, 2 ** 31 - 8, 2 ** 32 - 40_000];
const SCALES = [1e-3, -2.5e-3, 0.7, -3, 2 ** -20];
const KEYS = [seedKey(0, 0), seedKey(7, 4095), seedKey(0xdeadbeef, 12), 0, 0xffffffff];

test('the graph is an opset-18 model of integer ops, one table gather and one Mul/Add per seed', () => {
  assert.ok(buildPerturbationGraph(1).length > 256 * 1024, 'the float32 table (256 KiB) is an initializer');
  assert.ok(buildPerturbationGraph(1, 'arithmetic').length > 4 * 256 * 1024, 'the four xor tables are initializers');
  assert.throws(() => buildPerturbationGraph(0), RangeError);
  assert.throws(() => buildPerturbationGraph(9), RangeError);
  assert.throws(() => buildPerturbationGraph(9, 'arithmetic'), RangeError);
});

test('key bytes of the arithmetic form: low to high, the upper half folded into the lower (x ^ x >>> 16)', () => {
  assert.deepEqual(keyBytes(0x11223344), [0x44 ^ 0x22, 0x33 ^ 0x11, 0x22, 0x11]);
  assert.deepEqual(keyBytes(0xffffffff), [0, 0, 255, 255]);
});

for (const form of FORMS)
  describe(`${form} form on ${PROVIDER}`, () => {
    let single: PerturbationGraphSession;
    let fused: PerturbationGraphSession;

    before(async () => {
      single = await PerturbationGraphSession.create({ seeds: 1, intraOpNumThreads: 1, executionProviders: PROVIDER, form });
      fused = await PerturbationGraphSession.create({ seeds: 2, intraOpNumThreads: 1, executionProviders: PROVIDER, form });
      // A requested device must really be in use, not silently replaced by another provider.
      assert.equal(single.providerReport.used, PROVIDER, JSON.stringify(single.providerReport.attempts));
      assert.equal(single.form, form);
    });
    after(async () => {
      await single.release();
      await fused.release();
    });

    test('one seed: graph output equals JS and WASM kernels bit for bit', async () => {
      let cases = 0;
      for (const n of LENGTHS) {
        for (const offset of OFFSETS) {
          const key = KEYS[cases % KEYS.length];
          const s = SCALES[cases % SCALES.length];
          cases++;
          const w = mixedWeights(n, n * 31 + offset);
          const viaJs = w.slice();
          js.perturb(viaJs, offset, key, s);
          const viaWasm = w.slice();
          wasm.perturb(viaWasm, offset, key, s);
          const viaGraph = await single.apply(w, offset, [{ key, s }]);
          const what = `n ${n} offset ${offset} key ${key} s ${s}`;
          assertSameBits(viaWasm, viaJs, `${what} (wasm vs js)`);
          assertSameBits(viaGraph, viaJs, what);
          assert.notDeepEqual(viaGraph, w, 'the weights changed');
        }
      }
    });

    test('every key and scale on one odd-length tensor at a large offset; the input is not modified', async () => {
      const n = 4099;
      const offset = 2 ** 32 - 2 * n - 2;
      const w = mixedWeights(n, 99);
      const original = w.slice();
      for (const key of KEYS) {
        for (const s of SCALES) {
          const want = w.slice();
          js.perturb(want, offset, key, s);
          assertSameBits(await single.apply(w, offset, [{ key, s }]), want, `key ${key} s ${s}`);
        }
      }
      assertSameBits(w, original, 'input');
    });

    test('fused two seeds equal perturb2 and two single passes in order, into a pre-allocated output', async () => {
      for (const [n, offset] of [
        [1, 0],
        [1001, 2],
        [8193, 2 ** 31 - 8],
        [20_003, 2 ** 32 - 40_000],
      ] as const) {
        const w = mixedWeights(n, n + 5);
        const terms: SeedTerm[] = [
          { key: seedKey(3, 10), s: 1e-3 - 0.05 * 0.37 },
          { key: seedKey(3, 11), s: 1e-3 },
        ];
        const want = w.slice();
        js.perturb2(want, offset, terms[0].key, terms[0].s, terms[1].key, terms[1].s);
        const viaWasm = w.slice();
        wasm.perturb2(viaWasm, offset, terms[0].key, terms[0].s, terms[1].key, terms[1].s);
        assertSameBits(viaWasm, want, `n ${n}: wasm perturb2`);

        const out = new Float32Array(n);
        const got = await fused.apply(w, offset, terms, out);
        assert.equal(got, out);
        assertSameBits(out, want, `n ${n}: fused graph`);

        const twice = await single.apply(await single.apply(w, offset, [terms[0]]), offset, [terms[1]]);
        assertSameBits(twice, want, `n ${n}: two single passes`);
      }
    });

    test('a +s then -s pair of passes through the graph equals the same pair in the kernels', async () => {
      const w = mixedWeights(5001, 1);
      const key = seedKey(11, 2);
      const there = await single.apply(w, 64, [{ key, s: 0.01 }]);
      const back = await single.apply(there, 64, [{ key, s: -0.01 }]);
      const want = w.slice();
      js.perturb(want, 64, key, 0.01);
      js.perturb(want, 64, key, -0.01);
      assertSameBits(back, want, 'restore');
    });

    test('bad calls are refused: odd offset, wrong number of seeds, out aliasing w, past the index space', async () => {
      const w = mixedWeights(10, 2);
      await assert.rejects(single.apply(w, 3, [{ key: 1, s: 1 }]), RangeError);
      await assert.rejects(single.apply(w, 0, []), /applies 1 seed/);
      await assert.rejects(single.apply(w, 0, [{ key: 1, s: 1 }], w.subarray(0)), /share memory/);
      await assert.rejects(single.apply(w, 2 ** 32 - 4, [{ key: 1, s: 1 }]), /index space/);
    });
  });
