// The device-resident ZO loop on WebGPU (docs/gpu.md): every node of the perturbation graphs and of the
// forward is assigned to WebGPU (onnxruntime's own verbose log); passes on the device give the host
// kernels' bits; the bytes crossing the bus per step do not grow with the model; training lowers the loss;
// and a federation of one CPU client and one WebGPU client holds bit-identical replicas after every round,
// on the device as on the host. Skipped, with the reason, where no WebGPU adapter can be created (CI
// installs Mesa's software Vulkan so they run there: for correctness, never for speed).
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startServer } from '../../federation/server';
import type { FederationConfig } from '../../protocol';
import { EngineLocalTrainer } from '../../trainer/client/engine-trainer';
import { FederationClient } from '../../federation/client/federation-client';
import { loadDataset, type Dataset } from '../../trainer/data/dataset';
import { rewriteForDevice } from '../../trainer/device/device-graph';
import { buildDevicePassGraph, buildPerturbationGraph } from '../../trainer/device/perturbation-graph';
import { nodePlacement } from '../../trainer/device/placement';
import { BusCounter, DeviceModelSession, DeviceWeights } from '../../trainer/device/resident';
import { MIN_ROW_WIDTH, rowWidth } from '../../trainer/device/rank1-pass-graph';
import type { CompactLayout } from '../../trainer/zo/rank1-compact';
import { followPerturbation, openEngine, type Engine } from '../../trainer/engine';
import { greedyGenerate } from '../../trainer/model/generate';
import { gpt2Bytes, loadModel, parseModel, rewriteForTraining, writeGpt2, type Gpt2Config, type LoadedModel } from '../../trainer/model';
import { ModelSession, type TokenBatch } from '../../trainer/device/session';
import { bundledModelDir, packageRoot } from '../../trainer/paths';
import { seedKey } from '../../trainer/zo/generator';
import { ParameterSet } from '../../trainer/zo/parameters';
import { SeedSampler } from '../../trainer/zo/seed-sampler';
import { ZoTrainer, type BatchLoss } from '../../trainer/zo/zo-trainer';
import { exportedModelFixtures, skipWithoutWebGpu } from '../helpers/webgpu';

const tiny = (over: Partial<Gpt2Config> = {}): Gpt2Config => ({
  vocab: 32,
  ctx: 16,
  dModel: 16,
  layers: 1,
  heads: 2,
  mlpRatio: 2,
  tiedEmbeddings: true,
  dtype: 'float32',
  seed: 3,
  ...over,
});

async function gpt2(c: Gpt2Config): Promise<LoadedModel> {
  return parseModel(Buffer.from(gpt2Bytes(c)), `gpt2-${c.dModel}x${c.layers}`);
}

/** A fixed batch: rows of a repeating pattern, every position but the last a target. */
function patternBatch(batch: number, seq: number, period = 8): TokenBatch {
  const inputIds = new BigInt64Array(batch * seq);
  const attentionMask = new BigInt64Array(batch * seq).fill(1n);
  const labels = new BigInt64Array(batch * seq).fill(-100n);
  for (let b = 0; b < batch; b++) for (let t = 0; t < seq; t++) inputIds[b * seq + t] = BigInt((t + b) % period);
  for (let b = 0; b < batch; b++) for (let t = 0; t + 1 < seq; t++) labels[b * seq + t] = inputIds[b * seq + t + 1];
  return { inputIds, attentionMask, labels, batch, seq };
}

test('every node of the perturbation graphs and of the forward is assigned to WebGPU (no copies between providers)', async (t) => {
  if (await skipWithoutWebGpu(t)) return;
  const bundled = await loadModel(join(bundledModelDir(), 'model.onnx'));
  const built = await gpt2(tiny({ vocab: 64, ctx: 32, layers: 2 }));
  const graphs: [string, Uint8Array][] = [
    ['perturb (1 seed)', buildPerturbationGraph(1, 'arithmetic')],
    ['perturb2 (fused restore/update + next seed)', buildPerturbationGraph(2, 'arithmetic')],
    ['device pass: kept z of the last seed + the next seed hashed, its z returned', buildDevicePassGraph(['cached', 'hash'])],
    ['device pass: kept z only', buildDevicePassGraph(['cached'])],
    [
      'forward of the bundled model',
      rewriteForDevice(rewriteForTraining(bundled), new ParameterSet(bundled.weights, { kernel: 'js', resident: false }), { batch: 2, seq: 16 }),
    ],
    [
      'forward of a GPT-2 builder model',
      rewriteForDevice(rewriteForTraining(built), new ParameterSet(built.weights, { kernel: 'js', resident: false }), { batch: 4, seq: 32 }),
    ],
  ];
  for (const [what, bytes] of graphs) {
    const placement = await nodePlacement(bytes, 'webgpu');
    const elsewhere = placement.elsewhere.map((n) => `${n.opType} (${n.name}) on ${n.provider}`);
    assert.deepEqual(elsewhere, [], `${what}: nodes not on WebGPU`);
    assert.equal(placement.copies, 0, `${what}: Memcpy nodes`);
    // Every node on WebGPU (the kept-z pass has two).
    assert.ok((placement.providers.get('WebGpuExecutionProvider')?.count ?? 0) >= (what.includes('kept z only') ? 2 : 11), `${what}: placed on WebGPU`);
  }
  // The check sees what it is meant to: the bitwise form of the hash does fall back to the CPU.
  const bitwise = await nodePlacement(buildPerturbationGraph(1, 'bitwise'), 'webgpu');
  assert.ok(bitwise.elsewhere.some((n) => n.opType === 'BitwiseXor' && n.provider === 'CPUExecutionProvider'));
});

test("device passes give the host kernels' bits; a pass consumes the replica, resets and coefficient updates upload the exact one", async (t) => {
  if (await skipWithoutWebGpu(t)) return;
  const model = await gpt2(tiny({ vocab: 48, dModel: 24, layers: 2, heads: 3 }));
  const host = new ParameterSet(model.weights.map((w) => ({ ...w, data: w.data.slice() })));
  const params = new ParameterSet(model.weights);
  const weights = await DeviceWeights.create(params);
  try {
    const [a, b] = [seedKey(9, 1), seedKey(9, 2)];
    host.perturb(a, 1e-3);
    host.perturb(a, -2e-3);
    host.perturb2(a, 1e-3 - 0.01 * 0.7, b, 1e-3);
    host.perturb(b, -0.5);
    await weights.perturb(a, 1e-3);
    await weights.perturb(a, -2e-3);
    await weights.perturb2(a, 1e-3 - 0.01 * 0.7, b, 1e-3);
    await weights.perturb(b, -0.5);
    assert.equal(await weights.digest(), host.digest(), 'four passes on the device');
    assert.equal(weights.counter.weightTransfers, 2, 'one upload, one read-back');

    weights.resetToBase();
    assert.equal(await weights.digest(), params.digest(), 'reset: the replica');
    // The first pass consumed the replica's buffer (never held beside the working weights): uploaded again.
    assert.equal(weights.counter.weightTransfers, 4, 'a second upload, a second read-back');
    assert.equal(await weights.digest(), params.digest(), 'reset again: the replica');
    assert.equal(weights.counter.weightTransfers, 5, 'no pass since: the replica stayed on the device');

    params.applyCoefficientDelta(9, [1, 2, 7], [65536, -3 * 65536, 12345], 0.01);
    host.applyCoefficientDelta(9, [1, 2, 7], [65536, -3 * 65536, 12345], 0.01);
    assert.equal(await weights.digest(), host.digest(), 'the rebuilt replica, uploaded');
    assert.equal(weights.counter.weightTransfers, 7);
  } finally {
    await weights.release();
  }
});

test("shaped passes on the device give the host kernels' bits (per-tensor multipliers), and the shaped replica is the host's", async (t) => {
  if (await skipWithoutWebGpu(t)) return;
  const model = await gpt2(tiny({ vocab: 48, dModel: 24, layers: 2, heads: 3 }));
  const host = new ParameterSet(model.weights.map((w) => ({ ...w, data: w.data.slice() })));
  const params = new ParameterSet(model.weights);
  host.setShape('tensor-rms');
  params.setShape('tensor-rms');
  assert.ok(new Set(host.shapeMultipliers().values()).size > 1, 'the model has tensors of different scales');
  const weights = await DeviceWeights.create(params);
  try {
    const [a, b] = [seedKey(9, 1), seedKey(9, 2)];
    host.perturb(a, 1e-3);
    host.perturb2(a, -1e-3 - 0.01 * 0.7, b, 1e-3);
    await weights.perturb(a, 1e-3);
    await weights.perturb2(a, -1e-3 - 0.01 * 0.7, b, 1e-3);
    assert.equal(await weights.digest(), host.digest(), 'shaped passes on the device');
    params.applyCoefficientDelta(9, [1, 2, 7], [65536, -3 * 65536, 12345], 0.01);
    host.applyCoefficientDelta(9, [1, 2, 7], [65536, -3 * 65536, 12345], 0.01);
    assert.equal(await weights.digest(), host.digest(), 'the shaped replica, uploaded');
  } finally {
    await weights.release();
  }
});

test('the device forward matches the CPU session: losses within float rounding, same greedy tokens', async (t) => {
  if (await skipWithoutWebGpu(t)) return;
  const model = await loadModel(join(bundledModelDir(), 'model.onnx'));
  const params = new ParameterSet(model.weights);
  const cpu = await ModelSession.create(model, { intraOpNumThreads: 2 });
  params.bindTo(cpu);
  const weights = await DeviceWeights.create(params);
  const device = new DeviceModelSession(model, weights, { maxSequence: 256 });
  try {
    const batch = patternBatch(3, 20, 50);
    batch.attentionMask.fill(0n, 2 * 20 + 13); // a shorter last row (right padding)
    batch.labels.fill(-100n, 2 * 20 + 12);
    const [a, b] = [await cpu.lossSum(batch), await device.lossSum(batch)];
    assert.equal(b.tokens, a.tokens);
    assert.ok(Math.abs(a.lossSum - b.lossSum) <= 1e-5 * a.lossSum, `loss ${a.lossSum} vs ${b.lossSum}`);
    for (let r = 0; r < 3; r++) assert.ok(Math.abs(a.perExample[r] - b.perExample[r]) <= 1e-5 * Math.abs(a.perExample[r]) + 1e-6);
    const prompts = [
      [5, 9, 11, 3],
      [7, 7, 100, 200, 300, 12, 13],
    ];
    const options = { maxNewTokens: 6, eosId: 4095, padId: 4095, maxLength: 256 };
    assert.deepEqual(await greedyGenerate(device, prompts, options), await greedyGenerate(cpu, prompts, options));
  } finally {
    await device.release();
    await weights.release();
    await cpu.release();
  }
});

test("other exports (Optimum GPT-2 with and without a KV cache, Transformers.js float16 and quantized, a folded Llama) run entirely on WebGPU and give the CPU's loss", async (t) => {
  if (await skipWithoutWebGpu(t)) return;
  const files = exportedModelFixtures();
  if (files.length === 0) {
    t.skip('no exported model fixtures in test/fixtures/models');
    return;
  }
  for (const file of files) {
    const model = await loadModel(file);
    const training = rewriteForTraining(model);
    const params = new ParameterSet(model.weights);
    const placement = await nodePlacement(rewriteForDevice(training, params, { batch: 4, seq: 16 }), 'webgpu');
    assert.deepEqual(
      placement.elsewhere.map((n) => `${n.opType} (${n.name})`),
      [],
      `${file}: nodes not on WebGPU`,
    );
    const cpu = await ModelSession.create(training, { intraOpNumThreads: 2 });
    params.bindTo(cpu);
    const weights = await DeviceWeights.create(params);
    const device = new DeviceModelSession(training, weights);
    try {
      const batch = patternBatch(3, 12, Math.min(50, model.io.vocab ?? 50));
      batch.attentionMask.fill(0n, 2 * 12 + 7);
      batch.labels.fill(-100n, 2 * 12 + 6);
      const [a, b] = [await cpu.lossSum(batch), await device.lossSum(batch)];
      assert.ok(Math.abs(a.lossSum - b.lossSum) <= 1e-4 * a.lossSum, `${file}: loss ${a.lossSum} on the CPU, ${b.lossSum} on WebGPU`);
    } finally {
      await device.release();
      await weights.release();
      await cpu.release();
    }
  }
});

for (const generator of ['iid', 'rank1'] as const)
  test(`bytes across the bus per ZO step do not depend on the model size; the weights cross once (${generator})`, async (t) => {
    if (await skipWithoutWebGpu(t)) return;
    const perStep: number[] = [];
    const sizes: number[] = [];
    for (const c of [tiny({ dModel: 16, layers: 1 }), tiny({ dModel: 64, layers: 3, heads: 4 })]) {
      const model = await gpt2(c);
      const params = new ParameterSet(model.weights);
      params.setGenerator(generator);
      const counter = new BusCounter();
      const weights = await DeviceWeights.create(params, counter);
      const session = new DeviceModelSession(model, weights);
      try {
        const batch = patternBatch(2, 16);
        const trainer = new ZoTrainer(weights, session, { federationSeed: 3, k: 1024, epsilon: 1e-3, eta: 1e-3 });
        await trainer.train({ steps: 1, seeds: new SeedSampler(1024, 1), nextBatch: () => batch });
        assert.equal(counter.weightTransfers, 1, 'the first pass uploaded the replica');
        counter.reset();
        const steps = 4;
        await trainer.train({ steps, seeds: new SeedSampler(1024, 2), nextBatch: () => batch });
        assert.equal(counter.weightTransfers, 0, 'no weights crossed during the steps');
        const bytes = (counter.hostToDevice + counter.deviceToHost) / steps;
        perStep.push(bytes);
        sizes.push(params.parameterCount);
        t.diagnostic(
          `${generator}, ${params.parameterCount} parameters: ${bytes} bytes per step (${counter.hostToDevice / steps} to the device, ${counter.deviceToHost / steps} back)`,
        );
      } finally {
        await session.release();
        await weights.release();
      }
    }
    assert.ok(sizes[1] > 20 * sizes[0], `two model sizes (${sizes.join(', ')})`);
    assert.equal(perStep[1], perStep[0], 'bytes per step');
    assert.ok(perStep[0] < 2048, `${perStep[0]} bytes per step: token ids, keys, scales and per-token losses only`);
  });

/** A tiny GPT-2 on the device, its weights and forward session, released after `body`. */
async function onTinyDevice(body: (weights: DeviceWeights, session: DeviceModelSession, batch: TokenBatch) => Promise<void>): Promise<void> {
  const model = await gpt2(tiny());
  const weights = await DeviceWeights.create(new ParameterSet(model.weights));
  const session = new DeviceModelSession(model, weights);
  try {
    await body(weights, session, patternBatch(4, 16));
  } finally {
    await session.release();
    await weights.release();
  }
}

test('ZO training on WebGPU lowers the loss', async (t) => {
  if (await skipWithoutWebGpu(t)) return;
  await onTinyDevice(async (weights, session, batch) => {
    const loss = async (): Promise<number> => {
      const r = await session.lossSum(batch);
      return r.lossSum / r.tokens;
    };
    const before = await loss();
    const trainer = new ZoTrainer(weights, session, { federationSeed: 1, k: 4096, epsilon: 1e-3, eta: 0.01 });
    const result = await trainer.train({ steps: 40, seeds: new SeedSampler(4096, 5), nextBatch: () => batch });
    const after = await loss();
    t.diagnostic(`loss ${before.toFixed(4)} → ${after.toFixed(4)} in ${result.stepsRun} steps`);
    assert.equal(result.skipped, 0);
    assert.ok(after < before - 0.1, `loss ${before} → ${after}`);
    weights.resetToBase();
    assert.equal(await loss(), before, 'back on the replica');
  });
});

test('a step reads its two losses back in one wait for the device, with the same bits as awaiting each', async (t) => {
  if (await skipWithoutWebGpu(t)) return;
  await onTinyDevice(async (weights, session, batch) => {
    const run = async (model: BatchLoss) => {
      weights.resetToBase();
      const before = weights.counter.snapshot();
      const trainer = new ZoTrainer(weights, model, { federationSeed: 1, k: 4096, epsilon: 1e-3, eta: 0.01 });
      const result = await trainer.train({ steps: 6, seeds: new SeedSampler(4096, 5), nextBatch: () => batch });
      return { pairs: result.pairs, readBacks: weights.counter.readBacks - before.readBacks, digest: await weights.digest() };
    };
    // The device session (lossPair) against the same session seen only through lossSum.
    const paired = await run(session);
    const awaited = await run({ lossSum: (b) => session.lossSum(b) });
    assert.deepEqual(paired.pairs, awaited.pairs);
    assert.equal(paired.digest, awaited.digest);
    // One read-back per step, where awaiting each loss takes two (the digest's read-back is not counted: it comes after).
    assert.equal(paired.readBacks, 6);
    assert.equal(awaited.readBacks, 12);
  });
});

// A federation of one CPU client and one WebGPU client.
let dir: string;
let modelDir: string;
let data: Dataset;
const engines: Engine[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedk-webgpu-'));
  modelDir = join(dir, 'model');
  mkdirSync(modelDir);
  writeGpt2(
    { vocab: 4096, ctx: 64, dModel: 32, layers: 2, heads: 2, mlpRatio: 2, tiedEmbeddings: true, dtype: 'float32', seed: 5 },
    join(modelDir, 'model.onnx'),
  );
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(bundledModelDir(), f), join(modelDir, f));
});

after(async () => {
  for (const e of engines) await e.close();
  rmSync(dir, { recursive: true, force: true });
});

for (const generator of ['iid', 'rank1'] as const)
  test(`a CPU client and a WebGPU client${generator === 'rank1' ? ' of a rank-1 federation' : ''} hold bit-identical replicas after every round, on the device as on the host`, async (t) => {
    if (await skipWithoutWebGpu(t)) return;
    const config: FederationConfig = {
      ...(generator === 'rank1' ? { generator, shape: 'tensor-rms' as const } : {}),
      k: 128,
      federationSeed: 77,
      epsilon: 1e-3,
      eta: 2e-3,
      tau: 4,
      batchSize: 2,
      sampling: 'uniform',
      weighting: 'examples',
      rounds: 3,
      clientsPerRound: 2,
      deadlineMs: 120_000,
    };
    const cpu = await openEngine({ model: modelDir, threads: 1, providers: ['cpu'] });
    engines.push(cpu);
    const gpu = await openEngine({ model: modelDir, threads: 1, providers: ['webgpu'] });
    engines.push(gpu);
    assert.equal(cpu.session.executionProvider, 'cpu');
    assert.equal(gpu.session.executionProvider, 'webgpu');
    assert.ok(gpu.device, 'the WebGPU engine keeps its weights on the device');
    assert.ok(gpu.session.providerReport.adapterNote, 'the report names the adapter');
    data = await loadDataset(join(packageRoot(), 'test', 'fixtures', 'data', 'code'), { tokenizer: cpu.tokenizer, seqLen: 32, heldOutFraction: 0.3 });
    const server = await startServer({
      config,
      modelHash: Buffer.from(cpu.model.identity, 'hex'),
      generatorVersion: 1,
      paramCount: cpu.params.parameterCount,
      storePath: join(dir, `store-${generator}`),
      requireToken: false,
      minClients: 2,
    });
    try {
      const clients = [cpu, gpu].map((engine, i) => {
        // The WebGPU client's digest is its device replica read back, checked against its host replica.
        const trainer = new EngineLocalTrainer(engine, data, { batchSize: 2, seqLen: 32, clientSeed: i + 1, heldOutExamples: 4, checkDeviceReplica: true });
        const client = new FederationClient({
          url: server.url,
          clientId: `${engine.session.executionProvider}-${i}`,
          token: 'local',
          trainer,
          backoff: { initialMs: 20, maxMs: 200 },
        });
        const digests = new Map<number, string>();
        client.on('synced', ({ round, digest }) => digests.set(round, digest));
        return { client, digests };
      });
      const mismatches: unknown[] = [];
      server.events.on('digestMismatch', (e) => mismatches.push(e));
      const results = await Promise.all(clients.map((c) => c.client.run()));
      assert.deepEqual(
        results.map((r) => r.finalRound),
        [3, 3],
      );
      for (let r = 1; r <= config.rounds; r++) {
        const [a, b] = clients.map((c) => c.digests.get(r));
        assert.ok(a !== undefined && a === b, `round ${r}: cpu ${a} webgpu ${b}`);
      }
      assert.equal(mismatches.length, 0);
      const state = await server.store.loadState();
      assert.ok(state && state.coefficients.some((c) => c !== 0), 'the federation moved the model');
      assert.equal(await gpu.device?.digest(), cpu.params.digest(), 'the final replica on the device');
    } finally {
      await server.close();
    }
  });

test("rank-1 passes on the device give the host's bits, isotropic and shaped, and only keys and scales cross the bus", async (t) => {
  if (await skipWithoutWebGpu(t)) return;
  // Width 24: no row width of 32 or more, so a Concat tree assembles z; width 32: rows of 32 do. Passes
  // keep the expanded z for the next ones, or (as above LEAN_RANK1_ABOVE parameters) keep none.
  for (const [dModel, heads, shape, keepRank1Z] of [
    [24, 3, 'isotropic', true],
    [24, 3, 'tensor-rms', true],
    [32, 2, 'isotropic', true],
    [32, 2, 'tensor-rms', true],
    [32, 2, 'tensor-rms', false],
  ] as const) {
    const model = await gpt2(tiny({ vocab: 48, dModel, layers: 2, heads }));
    const host = new ParameterSet(model.weights.map((w) => ({ ...w, data: w.data.slice() })));
    const params = new ParameterSet(model.weights.map((w) => ({ ...w, data: w.data.slice() })));
    for (const set of [host, params]) {
      set.setGenerator('rank1');
      set.setShape(shape);
    }
    const width = rowWidth(params.rank1Layout() as CompactLayout);
    assert.equal(width >= MIN_ROW_WIDTH, dModel === 32, `row width ${width}`);
    const weights = await DeviceWeights.create(params, undefined, { keepRank1Z });
    assert.equal(weights.keepsRank1Z(), keepRank1Z);
    try {
      const [a, b] = [seedKey(9, 1), seedKey(9, 2)];
      host.perturb(a, 1e-3);
      host.perturb(a, -2e-3);
      host.perturb2(a, 1e-3 - 0.01 * 0.7, b, 1e-3);
      await weights.perturb(a, 1e-3);
      await weights.perturb(a, -2e-3);
      await weights.perturb2(a, 1e-3 - 0.01 * 0.7, b, 1e-3);
      assert.equal(
        await weights.digest(),
        host.digest(),
        `width ${dModel}, ${shape}, ${keepRank1Z ? 'z kept' : 'no z kept'}: three rank-1 passes on the device`,
      );
      // The weights crossed twice (upload, read-back); the passes sent only key bytes and scales:
      assert.equal(weights.counter.weightTransfers, 2);
      // Kept z: a's key once (its next passes read its z on the device), b's once (4 int32 each); none kept:
      // a key for each of the four seeds applied. And four scales.
      const keys = keepRank1Z ? 2 : 4;
      assert.equal(weights.counter.hostToDevice, params.indexSpan * 4 + keys * 16 + 4 * 4, 'each seed hashed on the device, keys and scales only');
      params.applyCoefficientDelta(9, [1, 2, 7], [65536, -3 * 65536, 12345], 0.01);
      host.applyCoefficientDelta(9, [1, 2, 7], [65536, -3 * 65536, 12345], 0.01);
      assert.equal(await weights.digest(), host.digest(), `width ${dModel}, ${shape}: the rank-1 replica, uploaded`);
    } finally {
      await weights.release();
    }
  }
});

test('a WebGPU engine runs a rank-1 run: the ZO step on the device lowers the loss', async (t) => {
  if (await skipWithoutWebGpu(t)) return;
  const gpu = await openEngine({ model: modelDir, threads: 1, providers: ['webgpu'] });
  engines.push(gpu);
  assert.ok(gpu.device, 'the engine is device-resident');
  followPerturbation(gpu, { generator: 'rank1', shape: 'tensor-rms' });
  assert.equal(gpu.params.generator, 'rank1');
  const batch = patternBatch(2, 16);
  const before = await gpu.session.lossSum(batch);
  const trainer = new ZoTrainer(gpu.weights, gpu.session, { federationSeed: 3, k: 4096, epsilon: 1e-3, eta: 2e-3 });
  const result = await trainer.train({ steps: 30, seeds: new SeedSampler(4096, 5), nextBatch: () => batch });
  const after = await gpu.session.lossSum(batch);
  t.diagnostic(
    `rank-1 on WebGPU: loss ${(before.lossSum / before.tokens).toFixed(4)} → ${(after.lossSum / after.tokens).toFixed(4)} in ${result.stepsRun} steps`,
  );
  assert.ok(after.lossSum / after.tokens < before.lossSum / before.tokens - 0.1, 'training on the device lowered the loss');
});
