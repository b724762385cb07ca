// Every way the engine can run a ZO step (hashing every pass or storing z, JS or WASM, weights resident
// or not, passes on one thread or split with a worker) trains to the same bits: the store only changes
// whether z is hashed or read back, the split only which thread computes an element.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TokenBatch } from '../../trainer/data/batches';
import { PassWorker, WorkerPassError } from '../../trainer/zo/pass-worker';
import { ParameterSet, type ParameterSetOptions, type WeightConsumer } from '../../trainer/zo/parameters';
import { SeedSampler } from '../../trainer/zo/seed-sampler';
import { type BatchLoss, ZoTrainer } from '../../trainer/zo/zo-trainer';
import { oddShapedModel } from '../helpers/float-fixtures';

const BATCH: TokenBatch = { inputIds: new BigInt64Array(1), attentionMask: new BigInt64Array(1), labels: new BigInt64Array(1), batch: 1, seq: 1 };

/**
 * A loss that depends on every weight's bits (read through the set at each call, as a session does), so
 * any difference in any pass changes g and the following steps. Step 3's L₋ is NaN: a skipped step.
 */
function weightLoss(params: ParameterSet): BatchLoss {
  let calls = 0;
  return {
    async lossSum() {
      calls++;
      if (calls === 8) return { lossSum: Number.NaN, tokens: 1 };
      let sum = 0;
      for (const t of params.tensors) for (let i = 0; i < t.data.length; i++) sum += t.data[i] * t.data[i] * (1 + (i % 7));
      return { lossSum: sum, tokens: 1 };
    },
  };
}

async function trainDigest(params: ParameterSet, steps = 12): Promise<{ digest: string; g: number[] }> {
  const trainer = new ZoTrainer(params, weightLoss(params), { federationSeed: 99, k: 64, epsilon: 1e-3, eta: 0.05 });
  const result = await trainer.train({ steps, seeds: new SeedSampler(64, 5), nextBatch: () => BATCH });
  assert.equal(result.stepsRun, steps);
  assert.equal(result.skipped, 1);
  return { digest: params.digest(), g: result.pairs.map((p) => p.g) };
}

test('training with the z store, without it, in JS and in WASM gives the same bits', async () => {
  const configs: ParameterSetOptions[] = [
    { kernel: 'js' },
    { kernel: 'js', zStore: true },
    { kernel: 'wasm-simd', zStore: false },
    { kernel: 'wasm-simd' },
    { kernel: 'wasm-simd', resident: false },
  ];
  const results = [];
  for (const options of configs) {
    const params = new ParameterSet(oddShapedModel(1, 777), options);
    results.push({ options, ...(await trainDigest(params)) });
  }
  const reference = results[0];
  assert.notEqual(reference.digest, new ParameterSet(oddShapedModel(1, 777)).digest(), 'training changed the weights');
  for (const r of results.slice(1)) {
    assert.deepEqual(r.g, reference.g, JSON.stringify(r.options));
    assert.equal(r.digest, reference.digest, JSON.stringify(r.options));
  }
});

test('a set trained with the store keeps matching after resets and restores between runs', async () => {
  const stored = new ParameterSet(oddShapedModel(1, 777), { kernel: 'wasm-simd' });
  const hashed = new ParameterSet(oddShapedModel(1, 777), { kernel: 'wasm-simd', zStore: false });
  for (const params of [stored, hashed]) {
    await trainDigest(params, 10);
    const snap = params.snapshot();
    params.resetToBase();
    params.restore(snap);
    await trainDigest(params, 10);
  }
  assert.equal(stored.digest(), hashed.digest());
});

/** Records every binding, as a session would hold the arrays it was given. */
class RecordingConsumer implements WeightConsumer {
  bindings = 0;
  bound: ReadonlyMap<string, Float32Array> = new Map();
  bindWeights(weights: ReadonlyMap<string, Float32Array>): void {
    this.bindings++;
    this.bound = new Map(weights);
  }
}

// Large enough for several 8192-element chunks in the worker's range.
const SPLIT_SCALE = 300;

test('passes split over a worker train to the same bits as one thread, and bound consumers follow the moved arrays', async () => {
  const single = new ParameterSet(oddShapedModel(SPLIT_SCALE, 777), { parallelPasses: 'off' });
  const reference = await trainDigest(single);
  assert.equal(single.split, false);

  const unbound = new ParameterSet(oddShapedModel(SPLIT_SCALE, 777), { parallelPasses: 'on' });
  assert.equal(unbound.split, true);
  const before = new Map(unbound.weights);
  assert.deepEqual(await trainDigest(unbound), reference, 'split ranges on one thread');
  for (const [name, data] of unbound.weights) assert.equal(data, before.get(name), `${name}: nothing bound, nothing moves`);

  const parallel = new ParameterSet(oddShapedModel(SPLIT_SCALE, 777), { parallelPasses: 'on' });
  const consumer = new RecordingConsumer();
  parallel.bindTo(consumer);
  try {
    assert.deepEqual(await trainDigest(parallel), reference, 'split over a worker');
    assert.ok(consumer.bindings > 20, `rebound after every pass (${consumer.bindings} bindings)`);
    for (const t of parallel.tensors) {
      assert.equal(consumer.bound.get(t.name), t.data, `${t.name}: the consumer holds the current array`);
      assert.equal(parallel.weights.get(t.name), t.data);
      assert.equal(t.data.length, t.size);
      assert.ok(t.data.buffer instanceof ArrayBuffer, `${t.name}: onnxruntime rejects shared buffers`);
    }
    const moved = parallel.tensors.filter((t) => !(t.data.buffer instanceof ArrayBuffer) || t.data.buffer !== parallel.tensors[0].data.buffer);
    assert.ok(moved.length > 0 && moved.length < parallel.tensors.length, 'whole tensors on each side');

    // Whole-model operations see both ranges.
    const snap = parallel.snapshot();
    assert.deepEqual(snap, single.snapshot());
    parallel.resetToBase();
    single.resetToBase();
    assert.equal(parallel.digest(), single.digest());
    parallel.applyCoefficientDelta(99, [1, 5, 9], [65536, -3 * 65536, 12345], 0.01);
    single.applyCoefficientDelta(99, [1, 5, 9], [65536, -3 * 65536, 12345], 0.01);
    assert.equal(parallel.digest(), single.digest());
    parallel.restore(snap);
    single.restore(snap);
    assert.deepEqual(await trainDigest(parallel), await trainDigest(single), 'after whole-model operations');

    // Disposing stops the worker; the set goes on, on this thread.
    parallel.dispose();
    assert.deepEqual(await trainDigest(parallel), await trainDigest(single), 'after dispose');
  } finally {
    parallel.dispose();
  }
});

test('the split rule: asked for, from PARALLEL_MIN_PARAMETERS on (auto), resident WASM weights only', () => {
  assert.equal(new ParameterSet(oddShapedModel(SPLIT_SCALE, 777)).split, false, 'off by default');
  assert.equal(new ParameterSet(oddShapedModel(SPLIT_SCALE, 777), { parallelPasses: 'auto' }).split, false, 'small sets stay on one thread');
  assert.equal(new ParameterSet(oddShapedModel(SPLIT_SCALE, 777), { parallelPasses: 'on', kernel: 'js' }).split, false);
  assert.equal(new ParameterSet(oddShapedModel(SPLIT_SCALE, 777), { parallelPasses: 'on', resident: false }).split, false);
});

test('a failing worker pass surfaces as an exception in the caller, with the weights handed back', () => {
  const worker = new PassWorker(0, 4096);
  try {
    const w = new Float32Array(4096).fill(0.5);
    worker.start({ kind: 'bogus' } as unknown as Parameters<PassWorker['start']>[0], w);
    assert.equal(w.length, 0, 'the buffer moved to the worker');
    assert.throws(
      () => worker.finish(),
      (e: unknown) => e instanceof WorkerPassError && /perturbation worker/.test(e.message) && e.weights.length === 4096 && e.weights[7] === 0.5,
    );
    const again = new Float32Array(4096);
    worker.start({ kind: 'perturbStore', key: 3, s: 1 }, again);
    assert.equal(worker.finish().length, 4096, 'the worker goes on after a failed pass');
  } finally {
    worker.dispose();
  }
});
