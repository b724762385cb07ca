// float16 forwards on WebGPU (trainer/device/float16-products.ts), on whatever adapter exists (CI: Mesa's
// lavapipe, whose Vulkan has shaderFloat16): the probe finds shader-f16, every node of a float16 forward
// is placed on WebGPU, and the ZO signal survives half precision: each seed's g under float16 forwards
// follows float32's; the exported fixtures run them too. An engine that cannot run them says why and runs
// float32, and the trainer host names what runs. The WebGPU parts are skipped, with the reason, where no
// WebGPU adapter can be created.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEVICE_NAMES, rewriteForDevice } from '../../trainer/device/device-graph';
import { nodePlacement } from '../../trainer/device/placement';
import { DeviceModelSession, DeviceWeights, deviceForwardPrecision } from '../../trainer/device/resident';
import type { TokenBatch } from '../../trainer/device/session';
import { openEngine } from '../../trainer/engine';
import { DataType, decodeModel } from '../../trainer/model/onnx';
import { elementTypes } from '../../trainer/device/float16-products';
import { loadModel, rewriteForTraining } from '../../trainer/model';
import { bundledModelDir } from '../../trainer/paths';
import { seedKey } from '../../trainer/zo/generator';
import { ParameterSet } from '../../trainer/zo/parameters';
import { exportedModelFixtures, skipWithoutWebGpu } from '../helpers/webgpu';
import type { HostNotifier } from '../../trainer/host/notifier';
import { TrainerSession } from '../../trainer/host/session';
import type { TrainerStatus } from '../../contracts/trainer-payloads';

/** Two rows of varied token ids, every position but the last a target. */
function textBatch(batch: number, seq: number, vocab: number): TokenBatch {
  const inputIds = new BigInt64Array(batch * seq);
  const labels = new BigInt64Array(batch * seq).fill(-100n);
  for (let i = 0; i < batch * seq; i++) inputIds[i] = BigInt((i * 7919 + 13) % vocab);
  for (let b = 0; b < batch; b++) for (let t = 0; t + 1 < seq; t++) labels[b * seq + t] = inputIds[b * seq + t + 1];
  return { inputIds, attentionMask: new BigInt64Array(batch * seq).fill(1n), labels, batch, seq };
}

function correlation(a: readonly number[], b: readonly number[]): number {
  const mean = (x: readonly number[]) => x.reduce((s, v) => s + v, 0) / x.length;
  const [ma, mb] = [mean(a), mean(b)];
  let [ab, aa, bb] = [0, 0, 0];
  for (let i = 0; i < a.length; i++) {
    ab += (a[i] - ma) * (b[i] - mb);
    aa += (a[i] - ma) ** 2;
    bb += (b[i] - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

test('the adapter runs float16 products, and every node of a float16 forward is placed on WebGPU', async (t) => {
  if (await skipWithoutWebGpu(t)) return;
  // lavapipe's Vulkan has shaderFloat16, so Dawn offers shader-f16: the probe must find it.
  assert.deepEqual(await deviceForwardPrecision('float16'), { used: 'float16', note: null });
  assert.deepEqual(await deviceForwardPrecision('float32'), { used: 'float32', note: null });
  const model = await loadModel(join(bundledModelDir(), 'model.onnx'));
  const bytes = rewriteForDevice(
    rewriteForTraining(model),
    new ParameterSet(model.weights, { kernel: 'js', resident: false }),
    { batch: 2, seq: 16 },
    'float16',
  );
  assert.ok(
    decodeModel(bytes).graph.node.some((n) => n.opType === 'Cast' && n.input[0] === DEVICE_NAMES.span),
    'the span is cast to float16',
  );
  const placement = await nodePlacement(bytes, 'webgpu');
  assert.deepEqual(
    placement.elsewhere.map((n) => `${n.opType} (${n.name}) on ${n.provider}`),
    [],
  );
  assert.equal(placement.copies, 0);
});

test("g under float16 forwards follows float32's seed by seed (same device weights, seeds and batch); losses within half-precision rounding", async (t) => {
  if (await skipWithoutWebGpu(t)) return;
  const model = await loadModel(join(bundledModelDir(), 'model.onnx'));
  const params = new ParameterSet(model.weights);
  const weights = await DeviceWeights.create(params);
  const full = new DeviceModelSession(model, weights, { maxSequence: 256 });
  const half = new DeviceModelSession(model, weights, { maxSequence: 256, forwardPrecision: 'float16' });
  try {
    const batch = textBatch(2, 64, model.io.vocab ?? 4096);
    const epsilon = 1e-3;
    const loss = async (s: DeviceModelSession): Promise<number> => {
      const r = await s.lossSum(batch);
      return r.lossSum / r.tokens;
    };
    const [g32, g16]: number[][] = [[], []];
    for (let i = 0; i < 12; i++) {
      const key = seedKey(42, i);
      await weights.perturb(key, epsilon);
      const [p32, p16] = [await loss(full), await loss(half)];
      await weights.perturb(key, -2 * epsilon);
      const [m32, m16] = [await loss(full), await loss(half)];
      await weights.perturb(key, epsilon);
      assert.ok(Math.abs(p16 - p32) <= 2e-3 * p32, `loss ${p32} (float32) vs ${p16} (float16)`);
      g32.push((p32 - m32) / (2 * epsilon));
      g16.push((p16 - m16) / (2 * epsilon));
    }
    const r = correlation(g32, g16);
    t.diagnostic(`g float32 ${g32.map((g) => g.toFixed(3)).join(' ')}; float16 ${g16.map((g) => g.toFixed(3)).join(' ')}; correlation ${r.toFixed(4)}`);
    assert.ok(r > 0.95, `correlation ${r}`);
    assert.notDeepEqual(g16, g32, 'float16 forwards compute in float16');
  } finally {
    await half.release();
    await full.release();
    await weights.release();
  }
});

test('other exports (Optimum GPT-2 with and without a KV cache, Transformers.js float16 and quantized, a folded Llama) run float16 forwards entirely on WebGPU, within half-precision rounding of float32', async (t) => {
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
    const bytes = rewriteForDevice(training, params, { batch: 2, seq: 16 }, 'float16');
    // Every product of the export but the logits' one runs in float16.
    const graph = decodeModel(bytes).graph;
    const types = elementTypes(graph);
    const products = graph.node.filter((n) => n.opType === 'MatMul' || n.opType === 'Gemm');
    assert.ok(products.length > 1, file);
    assert.equal(products.filter((p) => types.get(p.output[0]) === DataType.FLOAT16).length, products.length - 1, file);
    const placement = await nodePlacement(bytes, 'webgpu');
    assert.deepEqual(
      placement.elsewhere.map((n) => `${n.opType} (${n.name})`),
      [],
      `${file}: nodes not on WebGPU`,
    );
    const weights = await DeviceWeights.create(params);
    const full = new DeviceModelSession(training, weights);
    const half = new DeviceModelSession(training, weights, { forwardPrecision: 'float16' });
    try {
      const batch = textBatch(2, 12, Math.min(50, model.io.vocab ?? 50));
      const [a, b] = [await full.lossSum(batch), await half.lossSum(batch)];
      assert.ok(Math.abs(a.lossSum - b.lossSum) <= 2e-3 * a.lossSum, `${file}: loss ${a.lossSum} in float32, ${b.lossSum} in float16`);
    } finally {
      await half.release();
      await full.release();
      await weights.release();
    }
  }
});

test('an engine asked for float16 forwards on the CPU provider runs float32 and says why', async () => {
  const engine = await openEngine({ providers: ['cpu'], forwardPrecision: 'float16', threads: 2 });
  try {
    assert.equal(engine.forwardPrecision.used, 'float32');
    assert.match(engine.forwardPrecision.note ?? '', /WebGPU engine only.*cpu/);
  } finally {
    await engine.close();
  }
});

test("the trainer host says which precision runs: the Training view's provider names float16, and a CPU engine's fallback is logged as a warning", async (t) => {
  const logs: { level: string; message: string }[] = [];
  const statuses: TrainerStatus[] = [];
  const notifier: HostNotifier = {
    status: (s) => statuses.push(s),
    steps: () => undefined,
    evaluation: () => undefined,
    metrics: () => undefined,
    roundCompleted: () => undefined,
    seedProbabilities: () => undefined,
    log: (level, message) => logs.push({ level, message }),
  };
  const session = new TrainerSession(notifier);
  try {
    const onCpu = await session.initialize({ provider: 'cpu', threads: 1, kernel: 'auto', forwardPrecision: 'float16' });
    assert.equal(onCpu.forwardPrecision, 'float32');
    assert.ok(logs.some((l) => l.level === 'warn' && /float16 forwards run on the WebGPU engine only/.test(l.message)));
    assert.equal(statuses.at(-1)?.provider, 'cpu');
    if (await skipWithoutWebGpu(t)) return;
    const onDevice = await session.initialize({ provider: 'webgpu', threads: 1, kernel: 'auto', forwardPrecision: 'float16' });
    assert.equal(onDevice.forwardPrecision, 'float16');
    assert.equal(statuses.at(-1)?.provider, 'webgpu · float16');
  } finally {
    await session.dispose();
  }
});
