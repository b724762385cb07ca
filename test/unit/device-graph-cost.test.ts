// Counts of what the perturbation graphs cost a device follow from the graphs themselves: the node counts
// by op type, the kernel launches and the bytes each pass moves at a given size, before and after the z
// kept between passes; and the device passes with a kept z give the kernels' bits on the CPU provider.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { forwardCost, graphCost, perturbationStepCost } from '../../trainer/device/graph-cost';
import { DataType, encodeGraph, int64Tensor, node, valueInfo } from '../../trainer/model/onnx';
import { rewriteForDevice, DEVICE_NAMES } from '../../trainer/device/device-graph';
import { buildDevicePassGraph, buildPerturbationGraph, devicePassFeeds, PERTURBATION_NAMES, type SeedSource } from '../../trainer/device/perturbation-graph';
import { gpt2Bytes, parseModel, rewriteForTraining } from '../../trainer/model';
import { seedKey } from '../../trainer/zo/generator';
import { JsKernels } from '../../trainer/zo/kernels-js';
import { ParameterSet } from '../../trainer/zo/parameters';
import { compactLayout } from '../../trainer/zo/rank1-compact';
import { buildRank1CompactGraph, buildRank1PassGraph } from '../../trainer/device/rank1-pass-graph';
import { assertSameBits, mixedWeights } from '../helpers/float-fixtures';

const sizes = (n: number) => ({ w: { dims: [n] }, pair_count: { dims: [], value: [n / 2] }, z_0: { dims: [n] } });

test('counts follow from the graph: nodes by op, launches (views and folded constants excluded), bytes linear in n', () => {
  const arithmetic = buildPerturbationGraph(1, 'arithmetic');
  const small = graphCost(arithmetic, sizes(1024), 512);
  const large = graphCost(arithmetic, sizes(4096), 2048);
  assert.equal(
    small.nodes,
    Object.values(small.byOp).reduce((a, b) => a + b, 0),
  );
  // Reshape and Unsqueeze alias their input: the only nodes that launch nothing.
  const views = (small.byOp.Reshape ?? 0) + (small.byOp.Unsqueeze ?? 0);
  assert.equal(small.dispatches, small.nodes - views);
  assert.equal(small.unsized, 0, 'every size is derived');
  // Every launch but the tiny ones works on pairs or parameters; bytes scale with n, less the fixed scalars.
  assert.equal(small.largeOutputs, small.dispatches);
  const perParam = (c: typeof small, n: number) => (c.readBytes + c.writeBytes) / n;
  assert.ok(Math.abs(perParam(large, 4096) - perParam(small, 1024)) < 1, `${perParam(large, 4096)} vs ${perParam(small, 1024)}`);
  // The bitwise form folds its shape arithmetic (Shape of a known size) into constants.
  const bitwise = graphCost(buildPerturbationGraph(1, 'bitwise'), { w: { dims: [1024] } });
  assert.ok(bitwise.dispatches < bitwise.nodes - 2);
});

test('the peak counts what is live at once: inputs throughout, an intermediate until its last reader, a view as its base', () => {
  const n = 1000;
  const chain = (withView: boolean): Uint8Array =>
    encodeGraph({
      name: 'chain',
      node: [
        node('Mul', ['x', 'x'], ['a'], 'a'),
        node('Mul', ['a', 'a'], ['b'], 'b'),
        ...(withView ? [node('Reshape', ['a', 'flat'], ['a_view'], 'a_view')] : []),
        node('Mul', ['b', 'b'], ['c'], 'c'),
        node('Add', [withView ? 'a_view' : 'c', 'c'], ['y'], 'y'),
      ],
      initializer: [int64Tensor('flat', [-1])],
      input: [valueInfo('x', DataType.FLOAT, [n])],
      output: [valueInfo('y', DataType.FLOAT, [n])],
    });
  // x, a, b (a dies once b is made), c (b dies), y: never more than three buffers.
  assert.equal(graphCost(chain(false), {}).peakBytes, 3 * (4 * n));
  // a read through its view by the last node stays live: x, a, b and c when c is made.
  assert.equal(graphCost(chain(true), {}).peakBytes, 4 * (4 * n));
});

test('a kept z makes a pass two launches, and a step hash once: fewer launches and bytes than hashing every pass', () => {
  const n = 1 << 16;
  const kept = graphCost(buildDevicePassGraph(['cached']), sizes(n));
  assert.deepEqual(kept.byOp, { Add: 1, Mul: 1 });
  assert.equal(kept.dispatches, 2);
  // Mul reads z (4 B), writes the step (4 B); Add reads w and the step, writes w (12 B): 20 B/param.
  assert.ok(Math.abs((kept.readBytes + kept.writeBytes) / n - 20) < 0.01);
  // Live at once: w and z (inputs, held by the caller), the step, then w_out beside them; and the 4-byte scale.
  assert.equal(kept.peakBytes, 4 * (4 * n) + 4);

  const before = perturbationStepCost(n, 'hash-every-pass', (s) => buildPerturbationGraph(s.length, 'arithmetic'));
  const after = perturbationStepCost(n, 'cached-z', (s) => buildDevicePassGraph(s));
  const oneHash = graphCost(buildPerturbationGraph(1, 'arithmetic'), sizes(n));
  const twoHashes = graphCost(buildPerturbationGraph(2, 'arithmetic'), sizes(n));
  assert.equal(before.dispatches, oneHash.dispatches + twoHashes.dispatches);
  // After: one hash (its z returned, no extra launch) plus a kept-z seed in each pass.
  assert.equal(after.dispatches, oneHash.dispatches + 2 + 2);
  assert.ok(after.dispatches * 2 < before.dispatches, `${after.dispatches} vs ${before.dispatches}`);
  assert.ok(after.bytesPerParameter * 2 < before.bytesPerParameter, `${after.bytesPerParameter} vs ${before.bytesPerParameter}`);
});

test("a rank-1 step hashes factor-sized buffers only: its device bytes per parameter are a fraction of the iid step's, and its hash does not grow with the matrices", async () => {
  const counts = [];
  for (const dModel of [24, 96]) {
    const model = await parseModel(
      Buffer.from(gpt2Bytes({ vocab: 48, ctx: 16, dModel, layers: 2, heads: 3, mlpRatio: 2, tiedEmbeddings: true, dtype: 'float32', seed: 3 })),
      `gpt2-${dModel}x2`,
    );
    const params = new ParameterSet(model.weights, { kernel: 'js', resident: false });
    const n = params.indexSpan;
    const layout = compactLayout(params.tensors, null, n);
    const rank1 = perturbationStepCost(n, 'cached-z', (s) => buildRank1PassGraph(layout, s));
    const iid = perturbationStepCost(n, 'cached-z', (s) => buildDevicePassGraph(s));
    const lean = perturbationStepCost(n, 'no-kept-z', (s) => buildRank1PassGraph(layout, s, false));
    // A run keeping z holds its input, z, the step and its output; keeping none frees z once its step is made.
    assert.ok(Math.abs((rank1.peakOverWeights as number) - 4) < 0.1, `kept z: ${rank1.peakOverWeights}× the weights`);
    assert.ok(Math.abs((lean.peakOverWeights as number) - 3) < 0.1, `no kept z: ${lean.peakOverWeights}× the weights`);
    assert.ok(lean.dispatches > rank1.dispatches && lean.bytesPerParameter > rank1.bytesPerParameter, 're-expanding costs launches and bytes');
    // The −2εz pass is the same two launches either way: Mul and Add over the kept z.
    assert.deepEqual(rank1.passes[2].cost.byOp, { Add: 1, Mul: 1 });
    assert.ok(rank1.bytesPerParameter * 3 < iid.bytesPerParameter, `rank1 ${rank1.bytesPerParameter} vs iid ${iid.bytesPerParameter} B/param`);
    const hashed = graphCost(buildRank1CompactGraph(layout), {});
    counts.push({ n, compact: layout.length, hashBytes: hashed.readBytes + hashed.writeBytes, perParameter: rank1.bytesPerParameter });
  }
  const [small, large] = counts;
  // Four times the width: ~16× the matrices' parameters, ~4× their factors; the hash follows the factors.
  assert.ok(large.n > 10 * small.n, `${large.n} vs ${small.n}`);
  assert.ok(large.hashBytes / small.hashBytes < large.n / small.n / 2, `hash bytes ${large.hashBytes} vs ${small.hashBytes}`);
  assert.ok(large.perParameter < small.perParameter, `${large.perParameter} vs ${small.perParameter} B/param`);
});

test('a forward moves each weight three times (Slice reads and writes it, its consumer reads it): 12 B per parameter', async () => {
  const model = await parseModel(
    Buffer.from(gpt2Bytes({ vocab: 48, ctx: 16, dModel: 24, layers: 2, heads: 3, mlpRatio: 2, tiedEmbeddings: true, dtype: 'float32', seed: 3 })),
    'gpt2-24x2',
  );
  const params = new ParameterSet(model.weights, { kernel: 'js', resident: false });
  const f = forwardCost(rewriteForDevice(rewriteForTraining(model), params, { batch: 1, seq: 16 }), DEVICE_NAMES.span);
  assert.equal(f.weightSlices, params.tensors.length);
  // Plus each Slice's start, end and axis (int64 scalars).
  assert.equal(f.weightBytes, 12 * params.parameterCount + 3 * 8 * f.weightSlices);
});

test("device passes with kept z values give the kernels' bits (CPU provider), in any order of kept and hashed seeds", async () => {
  const js = new JsKernels();
  const n = 8194;
  const [a, b] = [seedKey(5, 1), seedKey(5, 2)];
  const session = async (sources: SeedSource[]) =>
    ort.InferenceSession.create(buildDevicePassGraph(sources), { executionProviders: ['cpu'], logSeverityLevel: 3 });
  const run = async (sources: SeedSource[], w: Float32Array, terms: { key: number; s: number }[], z: Float32Array[]) => {
    const s = await session(sources);
    const feeds = devicePassFeeds(sources, n, terms);
    feeds[PERTURBATION_NAMES.weights] = new ort.Tensor('float32', w, [n]);
    sources.forEach((src, k) => {
      if (src === 'cached') feeds[PERTURBATION_NAMES.cachedZ(k)] = new ort.Tensor('float32', z[k], [n]);
    });
    const out = await s.run(feeds);
    await s.release();
    return { w: out[PERTURBATION_NAMES.output].data as Float32Array, z: out[PERTURBATION_NAMES.zOutput]?.data as Float32Array | undefined };
  };
  const w = mixedWeights(n, 3);
  const want = w.slice();
  js.perturb(want, 0, a, 1e-3);
  const first = await run(['hash'], w, [{ key: a, s: 1e-3 }], []);
  assertSameBits(first.w, want, 'hashed');
  assert.ok(first.z, 'a hashed last seed returns its z');
  js.perturb(want, 0, a, -2e-3);
  const second = await run(['cached'], first.w, [{ key: a, s: -2e-3 }], [first.z]);
  assert.equal(second.z, undefined);
  assertSameBits(second.w, want, 'kept z');
  js.perturb2(want, 0, a, 1e-3 - 0.07, b, 1e-3);
  const third = await run(
    ['cached', 'hash'],
    second.w,
    [
      { key: a, s: 1e-3 - 0.07 },
      { key: b, s: 1e-3 },
    ],
    [first.z],
  );
  assertSameBits(third.w, want, 'kept z then hashed');
  js.perturb2(want, 0, b, -0.5, a, 0.25);
  const fourth = await run(
    ['cached', 'cached'],
    third.w,
    [
      { key: b, s: -0.5 },
      { key: a, s: 0.25 },
    ],
    [third.z as Float32Array, first.z],
  );
  assertSameBits(fourth.w, want, 'two kept');
  js.perturb2(want, 0, a, 0.5, b, 0.125);
  const fifth = await run(
    ['hash', 'cached'],
    fourth.w,
    [
      { key: a, s: 0.5 },
      { key: b, s: 0.125 },
    ],
    [new Float32Array(0), third.z as Float32Array],
  );
  assertSameBits(fifth.w, want, 'hashed then kept');
});
