// The rank-1 generator (trainer/zo/rank1.ts): z of a matrix is u·vᵀ of two hashed vectors. It must be the
// scalar definition bit for bit in every loop (JS and WebAssembly, partial rows, rows wider than a chunk),
// in every engine path (sums held, in a file or recomputed; one thread or a split set), with the replica
// w0 − η·2⁻²⁸·S exact; and z must still have E[z] = 0 and E[z·zᵀ] = I, which the ZO estimator needs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maxTableValue, RANK1_MAX_ABS, ZQ_MAX_ABS } from '../../protocol';
import type { TokenBatch } from '../../trainer/data/batches';
import { seedKey, tableDigest, zIndex } from '../../trainer/zo/generator';
import { tableScale } from '../../trainer/zo/kernels';
import { ParameterSet, type ParameterSetOptions, type TensorInit } from '../../trainer/zo/parameters';
import {
  matrixBlocks,
  rank1Accumulate,
  rank1PassRange,
  rank1Value,
  ZR,
  ZR_SCALE,
  ZR_SHA256,
  defaultRank1Loops,
  type MatrixBlock,
} from '../../trainer/zo/rank1';
import { SeedSampler } from '../../trainer/zo/seed-sampler';
import { type BatchLoss, ZoTrainer } from '../../trainer/zo/zo-trainer';
import { compactValues, type CompactLayout } from '../../trainer/zo/rank1-compact';
import * as ort from 'onnxruntime-node';
import { keyByteFeeds } from '../../trainer/device/arithmetic-hash';
import {
  buildRank1CompactGraph,
  buildRank1PassGraph,
  compactPlan,
  MIN_ROW_WIDTH,
  RANK1_PASS_NAMES,
  rowWidth,
  type Rank1Source,
} from '../../trainer/device/rank1-pass-graph';
import { gpt2Bytes, parseModel } from '../../trainer/model';
import { oddShapedModel } from '../helpers/float-fixtures';

test('the factor table is pinned, mirrored, and its largest product is the exact range the protocol uses', () => {
  assert.equal(tableDigest(ZR), ZR_SHA256);
  assert.equal(ZR_SCALE, 64);
  let max = 0;
  for (let k = 0; k < ZR.length; k++) {
    assert.equal(ZR[ZR.length - 1 - k] + ZR[k], 0);
    max = Math.max(max, Math.abs(ZR[k]));
  }
  assert.equal(max * max, RANK1_MAX_ABS);
  assert.equal(maxTableValue('rank1'), RANK1_MAX_ABS);
  assert.equal(maxTableValue('iid'), ZQ_MAX_ABS);
  // Every value is an exact float32 integer: the passes' first multiply rounds nothing.
  assert.ok(RANK1_MAX_ABS < 2 ** 24);
});

test('matrices of at least two rows and two columns are factored; vectors and single rows or columns are not', () => {
  const blocks = matrixBlocks([
    { offset: 0, dims: [4, 5] },
    { offset: 24, dims: [7] },
    { offset: 32, dims: [1, 9] },
    { offset: 48, dims: [9, 1] },
    { offset: 64, dims: [2, 3, 4] },
  ]);
  assert.deepEqual(blocks, [
    { offset: 0, rows: 4, cols: 5 },
    { offset: 64, rows: 6, cols: 4 },
  ]);
  // u's and v's hashed indices stay inside each block's own span.
  for (const b of blocks) assert.ok(b.rows + b.cols <= b.rows * b.cols);
});

/** Blocks over a span with gaps, including a row wider than the WASM pass's 65,536-element chunk. */
const WIDE: MatrixBlock[] = [
  { offset: 0, rows: 3, cols: 7 },
  { offset: 24, rows: 5, cols: 9 },
  { offset: 72, rows: 2, cols: 70_001 },
];
const WIDE_SPAN = 72 + 2 * 70_001 + 5;

function randomWeights(n: number, seed: number): Float32Array {
  const w = new Float32Array(n);
  let h = seed;
  for (let i = 0; i < n; i++) {
    h = (Math.imul(h, 1103515245) + 12345) >>> 0;
    w[i] = (h / 2 ** 32 - 0.5) * 0.3;
  }
  return w;
}

test('a pass is the scalar definition bit for bit, in JS and in WebAssembly, over any range', () => {
  const loops = defaultRank1Loops();
  assert.notEqual(loops, 'js', 'this engine has WebAssembly SIMD');
  const keyA = seedKey(41, 3);
  const keyB = seedKey(41, 9);
  // Ranges that start and end mid-row, inside a gap, and cover everything.
  for (const [from, to] of [
    [0, WIDE_SPAN],
    [5, 30],
    [26, 60],
    [70, 72 + 70_001 + 17],
    [72 + 3, 72 + 10],
  ]) {
    for (const pass of [
      { keys: [keyA], steps: [0.0031] },
      { keys: [keyA, keyB], steps: [-0.002, 0.0007] },
    ]) {
      const base = randomWeights(WIDE_SPAN, from + 1);
      const expected = base.slice();
      for (let i = from; i < to; i++) {
        let x = expected[i];
        pass.keys.forEach((key, k) => {
          x = Math.fround(x + Math.fround(tableScale(pass.steps[k] * 2) * rank1Value(WIDE, key, i)));
        });
        expected[i] = x;
      }
      for (const impl of ['js', loops] as const) {
        const w = base.slice();
        rank1PassRange(w, 0, WIDE, pass, from, to, 2, impl);
        assert.deepEqual(w, expected, `${impl === 'js' ? 'js' : 'wasm'} [${from}, ${to}) ${pass.keys.length} seed(s)`);
      }
    }
  }
});

test('the accumulator is the exact sum of C_j·value_j, in JS and in WebAssembly, over any range', () => {
  const loops = defaultRank1Loops();
  const m = 70; // more than one group of seeds
  const keys = Uint32Array.from({ length: m }, (_, j) => seedKey(5, j));
  const coeffs = Float64Array.from({ length: m }, (_, j) => (j % 2 === 0 ? 1 : -1) * (1000 + j * 7919));
  const blocks: MatrixBlock[] = [
    { offset: 0, rows: 3, cols: 7 },
    { offset: 24, rows: 67, cols: 133 }, // past one 64 × 64 tile in both directions
  ];
  const span = 24 + 67 * 133 + 3;
  for (const [from, to] of [
    [0, span],
    [10, 24 + 133 * 5 + 17],
    [24 + 40, 24 + 133 * 66 + 1],
  ]) {
    const expected = new Float64Array(to - from);
    for (let i = from; i < to; i++) {
      let s = 0;
      for (let j = 0; j < m; j++) s += coeffs[j] * rank1Value(blocks, keys[j], i);
      expected[i - from] = s + 0.5 * i; // what S held before
    }
    for (const impl of ['js', loops] as const) {
      const S = Float64Array.from({ length: to - from }, (_, t) => 0.5 * (from + t));
      rank1Accumulate(S, from, blocks, keys, coeffs, impl);
      assert.deepEqual(S, expected, `${impl === 'js' ? 'js' : 'wasm'} [${from}, ${to})`);
    }
  }
});

test('z has mean 0 and identity covariance: within a row, within a column and across both', () => {
  const block: MatrixBlock = { offset: 0, rows: 4, cols: 6 };
  const n = 24;
  const seeds = 20_000;
  const mean = new Float64Array(n);
  const second = new Float64Array(n * n);
  for (let j = 0; j < seeds; j++) {
    const key = seedKey(2024, j);
    const z = Array.from({ length: n }, (_, i) => rank1Value([block], key, i) / 4096);
    for (let a = 0; a < n; a++) {
      mean[a] += z[a] / seeds;
      for (let b = 0; b < n; b++) second[a * n + b] += (z[a] * z[b]) / seeds;
    }
  }
  // Standard errors at 20,000 draws: 0.007 for a mean, 0.02 for E[z²] (Var z² = E[u²]²E[v²]² ·… ≈ 8), 0.007 off the diagonal.
  for (let a = 0; a < n; a++) {
    assert.ok(Math.abs(mean[a]) < 0.04, `mean of z_${a} = ${mean[a]}`);
    assert.ok(Math.abs(second[a * n + a] - 1) < 0.1, `E[z_${a}²] = ${second[a * n + a]}`);
    for (let b = 0; b < n; b++) if (a !== b) assert.ok(Math.abs(second[a * n + b]) < 0.04, `E[z_${a} z_${b}] = ${second[a * n + b]}`);
  }
  // Not the iid generator's values: the factored form is what is tested.
  assert.notEqual(rank1Value([block], seedKey(2024, 0), 7), 0);
  assert.equal(rank1Value([], seedKey(2024, 0), 7), rank1Value([], seedKey(2024, 0), 7));
  assert.equal(zIndex(seedKey(2024, 0), 7) >= 0, true);
});

const BATCH: TokenBatch = { inputIds: new BigInt64Array(1), attentionMask: new BigInt64Array(1), labels: new BigInt64Array(1), batch: 1, seq: 1 };

/** A loss of the weights alone: Σ (w − 0.05)²·(1 + i mod 7), so training must move every tensor. */
function weightLoss(params: ParameterSet): BatchLoss {
  return {
    async lossSum() {
      let sum = 0;
      for (const t of params.tensors) for (let i = 0; i < t.data.length; i++) sum += (t.data[i] - 0.05) ** 2 * (1 + (i % 7));
      return { lossSum: sum, tokens: 1 };
    },
  };
}

/** The replica by definition: w = fl32(w0 + fl64(−η·2⁻²⁸·m_t)·Σ_j C_j·value_j), tensor by tensor. */
function referenceReplica(model: TensorInit[], seeds: number[], deltas: number[], eta: number, multipliers: ReadonlyMap<string, number>): string {
  const set = new ParameterSet(model, { kernel: 'js' });
  const blocks = matrixBlocks(set.tensors);
  for (const t of set.tensors) {
    const scale = -eta * 2 ** -28 * (multipliers.get(t.name) ?? 1);
    for (let e = 0; e < t.size; e++) {
      let s = 0;
      seeds.forEach((j, n) => {
        s += deltas[n] * rank1Value(blocks, seedKey(99, j), t.offset + e);
      });
      t.data[e] = Math.fround(t.data[e] + scale * s);
    }
  }
  return set.digest();
}

async function rank1Training(
  options: ParameterSetOptions,
  scale = 1,
  shaped = false,
): Promise<{ digest: string; g: number[]; replica: string; before: number; after: number }> {
  const params = new ParameterSet(oddShapedModel(scale, 4242), options);
  if (scale > 1) params.bindTo({ bindWeights: () => undefined }); // a split set passes over both threads
  try {
    params.setGenerator('rank1');
    if (shaped) params.setShape('tensor-rms');
    const loss = weightLoss(params);
    const before = (await loss.lossSum(BATCH)).lossSum;
    const trainer = new ZoTrainer(params, loss, { federationSeed: 99, k: 64, epsilon: 1e-3, eta: 3e-5 });
    const result = await trainer.train({ steps: 150, seeds: new SeedSampler(64, 5), nextBatch: () => BATCH });
    const after = (await loss.lossSum(BATCH)).lossSum;
    const digest = params.digest();
    params.applyCoefficientDelta(99, [1, 5, 9], [65536, -3 * 65536, 12345], 0.01);
    return { digest, g: result.pairs.map((p) => p.g), replica: params.digest(), before, after };
  } finally {
    params.dispose();
  }
}

test('rank-1 training gives the same bits in every engine path, and its replica is the definition', async () => {
  for (const shaped of [false, true]) {
    const reference = await rank1Training({ kernel: 'js' }, 1, shaped);
    assert.ok(reference.after < reference.before * 0.97, `loss ${reference.before} → ${reference.after}`);
    for (const options of [
      { kernel: 'wasm-simd' },
      { kernel: 'wasm-simd', resident: false },
      { kernel: 'wasm-simd', sums: 'coefficients' },
      { kernel: 'wasm-simd', sums: 'file' },
    ] as ParameterSetOptions[]) {
      assert.deepEqual(await rank1Training(options, 1, shaped), reference, `${JSON.stringify(options)} shaped ${shaped}`);
    }
    const probe = new ParameterSet(oddShapedModel(1, 4242));
    if (shaped) probe.setShape('tensor-rms');
    const m = probe.shapeMultipliers();
    const fresh = new ParameterSet(oddShapedModel(1, 4242), { kernel: 'js' });
    fresh.setGenerator('rank1');
    if (shaped) fresh.setShape('tensor-rms');
    fresh.applyCoefficientDelta(99, [1, 5, 9], [65536, -3 * 65536, 12345], 0.01);
    assert.equal(fresh.digest(), referenceReplica(oddShapedModel(1, 4242), [1, 5, 9], [65536, -3 * 65536, 12345], 0.01, m));
  }
});

test('a split set gives the rank-1 bits of one thread, its worker computing every other piece of S', async () => {
  const single = await rank1Training({ parallelPasses: 'off' }, 300);
  // S recomputed or streamed: the worker takes every other piece, matrices (rank-1 jobs) and vectors alike.
  for (const sums of ['held', 'coefficients', 'file'] as const) {
    assert.deepEqual(await rank1Training({ parallelPasses: 'on', sums }, 300), single, sums);
  }
});

test('changing the generator replays the applied coefficients under it; the iid replica differs', () => {
  const late = new ParameterSet(oddShapedModel(1, 4242));
  late.applyCoefficientDelta(99, [2, 3], [70000, -90000], 0.02);
  const iid = late.digest();
  late.setGenerator('rank1');
  const early = new ParameterSet(oddShapedModel(1, 4242));
  early.setGenerator('rank1');
  early.applyCoefficientDelta(99, [2, 3], [70000, -90000], 0.02);
  assert.equal(late.digest(), early.digest());
  assert.notEqual(late.digest(), iid);
  assert.deepEqual(late.appliedCoefficients(), early.appliedCoefficients());
  late.setGenerator('iid');
  assert.equal(late.digest(), iid);
});

test('the exact range under rank-1 is max|u·v| · Σ|C| < 2^53, checked before anything changes', () => {
  const params = new ParameterSet(oddShapedModel(1, 4242));
  params.setGenerator('rank1');
  const limit = Math.floor(2 ** 53 / RANK1_MAX_ABS);
  const before = params.digest();
  assert.throws(() => params.applyCoefficientDelta(99, [1], [limit + 1], 0.01), /exactness bound: max\|value\| · Σ\|C_j\| = 76729/);
  assert.equal(params.digest(), before);
  params.applyCoefficientDelta(99, [1], [limit - 1], 1e-12);
});

/** Odd shapes at very different scales, so tensor-rms gives them different multipliers (and leaves the gaps alone). */
function mixedScaleModel(): TensorInit[] {
  const factors = [1, 0.25, 8, 1, 3, 0.01];
  return oddShapedModel(1, 4242).map((t, i) => ({ ...t, data: t.data.map((x) => x * factors[i]) }));
}

/** A rank-1 set of a copy of the model under the shape, and its compact layout. */
function rank1Set(model: readonly TensorInit[], shape: 'isotropic' | 'tensor-rms'): { set: ParameterSet; layout: CompactLayout } {
  const set = new ParameterSet(model.map((w) => ({ ...w, data: w.data.slice() })));
  set.setGenerator('rank1');
  set.setShape(shape);
  const layout = set.rank1Layout();
  assert.ok(layout !== null, 'a rank-1 set has a compact layout');
  return { set, layout };
}

test("a compact z expands to the host's z times each index's multiplier: isotropic, shaped (gaps 0) and merged runs", () => {
  const model = mixedScaleModel();
  for (const shape of ['isotropic', 'tensor-rms'] as const) {
    const { set, layout } = rank1Set(model, shape);
    assert.equal(layout.span, set.indexSpan);
    const m = set.shapeMultipliers();
    if (shape === 'tensor-rms') assert.ok(new Set(m.values()).size >= 3, 'distinct multipliers');
    const blocks = matrixBlocks(set.tensors);
    const key = seedKey(31, 4);
    const compact = compactValues(layout, key);
    assert.equal(compact.length, layout.length);
    // Expand as the device graph does: u·m times v per block, values as they are, in span order.
    const expanded = new Float64Array(layout.span);
    for (const s of layout.segments) {
      if (s.kind === 'values') for (let t = 0; t < s.length; t++) expanded[s.offset + t] = compact[s.at + t];
      else
        for (let r = 0; r < s.rows; r++) for (let c = 0; c < s.cols; c++) expanded[s.offset + r * s.cols + c] = compact[s.at + r] * compact[s.at + s.rows + c];
    }
    const covered = new Uint8Array(layout.span);
    for (const s of layout.segments) covered.fill(1, s.offset, s.offset + (s.kind === 'values' ? s.length : s.rows * s.cols));
    assert.ok(
      covered.every((x) => x === 1),
      'the segments cover the span',
    );
    for (let i = 0; i < layout.span; i++) {
      const tensor = set.tensors.find((t) => i >= t.offset && i < t.offset + t.size);
      const multiplier = tensor ? (m.get(tensor.name) as number) : set.shapeSpan() === null ? 1 : 0;
      const expected = rank1Value(blocks, key, i) * multiplier;
      assert.ok(expanded[i] === expected, `${shape} index ${i}: ${expanded[i]} for ${expected}`); // a gap's 0 may be −0 here
      assert.ok(Number.isInteger(expanded[i] * 64), 'an exact float32');
    }
    // Matrices send R + C values, not R·C.
    assert.ok(layout.length < set.indexSpan / 2, `${layout.length} compact values for ${set.indexSpan}`);
  }
});

test("a rank-1 pass graph gives the host pass's bits (CPU provider), expanded by rows or by a Concat tree, isotropic and shaped, hashed or kept z", async () => {
  const gpt = await parseModel(
    Buffer.from(gpt2Bytes({ vocab: 64, ctx: 16, dModel: 32, layers: 2, heads: 2, mlpRatio: 2, tiedEmbeddings: true, dtype: 'float32', seed: 5 })),
    'gpt2-32x2',
  );
  const models = [
    { name: 'GPT-2 layout', weights: gpt.weights, rows: true },
    { name: 'odd shapes', weights: oddShapedModel(1, 77), rows: false },
  ];
  for (const { name, weights, rows } of models) {
    for (const shape of ['isotropic', 'tensor-rms'] as const) {
      const { set: host, layout } = rank1Set(weights, shape);
      assert.equal(rowWidth(layout) >= MIN_ROW_WIDTH, rows, `${name}: row width ${rowWidth(layout)}`);
      const run = async (sources: Rank1Source[], w: Float32Array, terms: { key: number; s: number }[], kept?: Float32Array, keepZ = true) => {
        const graph = buildRank1PassGraph(layout, sources, keepZ);
        const session = await ort.InferenceSession.create(graph, { executionProviders: ['cpu'], logSeverityLevel: 3 });
        const feeds: Record<string, ort.Tensor> = { [RANK1_PASS_NAMES.weights]: new ort.Tensor('float32', w, [w.length]) };
        terms.forEach((t, k) => {
          if (sources[k] === 'cached') feeds[RANK1_PASS_NAMES.cachedZ(k)] = new ort.Tensor('float32', kept as Float32Array, [w.length]);
          else Object.assign(feeds, keyByteFeeds(k, t.key));
          feeds[RANK1_PASS_NAMES.scale(k)] = new ort.Tensor('float32', Float32Array.of(tableScale(t.s)), [1]);
        });
        const out = await session.run(feeds);
        await session.release();
        return { w: out[RANK1_PASS_NAMES.output].data as Float32Array, z: out[RANK1_PASS_NAMES.zOutput]?.data as Float32Array | undefined };
      };
      const same = (a: Float32Array, b: Float32Array, what: string): void => {
        const differ = a.findIndex((x, i) => !Object.is(x, b[i]));
        assert.equal(differ, -1, `${name}, ${shape}, ${what}: index ${differ}: ${a[differ]} for ${b[differ]}`);
      };
      const [a, b] = [seedKey(8, 1), seedKey(8, 2)];
      // A pass that keeps no z gives the same weights and returns no z.
      const lean = await run(['hash'], host.spanData().slice(), [{ key: a, s: 1e-3 }], undefined, false);
      assert.equal(lean.z, undefined);
      const first = await run(['hash'], host.spanData().slice(), [{ key: a, s: 1e-3 }]);
      same(lean.w, first.w, 'no z kept');
      host.perturb(a, 1e-3);
      same(first.w, host.spanData(), 'a hashed seed');
      assert.ok(first.z, 'the last hashed seed returns its z');
      const second = await run(['cached'], first.w, [{ key: a, s: -2e-3 }], first.z);
      host.perturb(a, -2e-3);
      same(second.w, host.spanData(), 'a kept z');
      const third = await run(
        ['cached', 'hash'],
        second.w,
        [
          { key: a, s: 1e-3 - 0.07 },
          { key: b, s: 1e-3 },
        ],
        first.z,
      );
      host.perturb2(a, 1e-3 - 0.07, b, 1e-3);
      same(third.w, host.spanData(), 'a kept z, then a hashed seed');
    }
  }
});

test("the device hashes a compact z from the key alone, bit for bit the host's (onnxruntime CPU provider; WebGPU in the integration suite)", async () => {
  const model = mixedScaleModel();
  for (const shape of ['isotropic', 'tensor-rms'] as const) {
    const { layout } = rank1Set(model, shape);
    const plan = compactPlan(layout);
    assert.equal(plan.multipliers.includes(0), shape !== 'isotropic', 'a shaped layout has gaps (multiplier 0), an isotropic one none');
    const session = await ort.InferenceSession.create(buildRank1CompactGraph(layout), { executionProviders: ['cpu'] });
    try {
      for (const key of [seedKey(31, 4), seedKey(31, 5), 0xffffffff, 0]) {
        const feeds: Record<string, ort.Tensor> = {};
        Object.assign(feeds, keyByteFeeds(0, key));
        const device = (await session.run(feeds)).compact.data as Float32Array;
        const host = compactValues(layout, key);
        // Same bits, but a gap's 0 may be −0 on the device (0·Zq), which adds to a gap's +0 as +0 does.
        const differ = device.findIndex((x, i) => !(Object.is(x, host[i]) || (x === 0 && host[i] === 0 && plan.multipliers[i] === 0)));
        assert.equal(differ, -1, `${shape}, key ${key}: position ${differ}: ${device[differ]} for ${host[differ]}`);
      }
    } finally {
      await session.release();
    }
    // Each pair is hashed once: factors and values both read half-words of the pairs in order.
    assert.ok(plan.pairs.length <= Math.ceil(layout.length / 2) + layout.segments.length, `${plan.pairs.length} pairs for ${layout.length} values`);
  }
});
