// Weight-only quantized models: int8 DequantizeLinear weights and 4-bit MatMulNBits weights train
// through float32 masters equal to what onnxruntime dequantizes (the loss matches torch on the
// dequantized weights), and export writes float32 weights or quantizes them again with the file's own
// scales and zero points.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { exportModel } from '../../trainer/model/export';
import { loadModel } from '../../trainer/model/load';
import { createModel, DataType, decodeModel, encodeModel, node, rawTensor, valueInfo } from '../../trainer/model/onnx';
import { roundHalfEven } from '../../protocol';
import { dequantizeNBits, quantizeNBits, type MatMulNBitsSource } from '../../trainer/model/quantized';
import { ModelSession } from '../../trainer/device/session';
import { ParameterSet } from '../../trainer/zo/parameters';
import { SeedSampler } from '../../trainer/zo/seed-sampler';
import { ZoTrainer } from '../../trainer/zo/zo-trainer';
import { fixtureLoss, fixturePath, parameterCount, reference, referenceBatch } from '../helpers/model-fixtures';

const dir = mkdtempSync(join(tmpdir(), 'fedkseed-quantized-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const INT8 = 'transformersjs-gpt2/model_quantized';
const Q4 = 'transformersjs-gpt2/model_q4';

for (const key of [INT8, Q4]) {
  test(`${key}: dequantized masters, loss equals torch's within 1e-4, the model's parameter count`, async () => {
    const model = await loadModel(fixturePath(key));
    const ref = reference.models[key];
    const quantized = model.weights.filter((w) => w.quantized).map((w) => (w.quantized?.kind === 'dequantize-linear' ? w.quantized.output : w.name));
    assert.equal(quantized.length, ref.quantized?.length);
    assert.equal(parameterCount(model), ref.parameters);
    const { loss } = await fixtureLoss(model);
    assert.ok(Math.abs(loss - ref.loss) <= 1e-4, `${loss} vs torch ${ref.loss}`);
    assert.ok(
      model.constants.every((c) => c.reason === 'quantization scale'),
      JSON.stringify(model.constants),
    );
  });

  test(`${key}: train a few steps, export as float32 and re-quantized`, async () => {
    const model = await loadModel(fixturePath(key));
    const params = new ParameterSet(model.weights, { kernel: 'js' });
    const session = await ModelSession.create(model, { intraOpNumThreads: 1 });
    params.bindTo(session);
    const batch = referenceBatch();
    const trainer = new ZoTrainer(params, session, { federationSeed: 5, k: 8, epsilon: 1e-3, eta: 5e-3 });
    await trainer.train({ steps: 4, seeds: new SeedSampler(8, 1), nextBatch: () => batch });
    const trained = await session.lossSum(batch);
    await session.release();

    const asFloat = join(dir, `${key.replace('/', '-')}-float.onnx`);
    exportModel(model, params.weights, asFloat);
    const floatGraph = decodeModel(readFileSync(asFloat)).graph;
    assert.ok(!floatGraph.node.some((n) => n.opType === 'DequantizeLinear' || n.opType === 'MatMulNBits'));
    const reloaded = await loadModel(asFloat);
    assert.ok(reloaded.weights.every((w) => !w.quantized && w.storage === 'float32'));
    assert.ok(Math.abs((await fixtureLoss(reloaded)).loss - trained.lossSum / trained.tokens) <= 1e-6);

    const requantized = join(dir, `${key.replace('/', '-')}-q.onnx`);
    exportModel(model, params.weights, requantized, { quantized: 'requantize' });
    const again = await loadModel(requantized);
    assert.deepEqual(
      again.weights.map((w) => [w.name, w.quantized?.kind ?? 'float']),
      model.weights.map((w) => [w.name, w.quantized?.kind ?? 'float']),
    );
    const loss = (await fixtureLoss(again)).loss;
    assert.ok(Number.isFinite(loss));
    // Untouched weights quantize back to exactly the file's values.
    const base = join(dir, `${key.replace('/', '-')}-base.onnx`);
    const original = await loadModel(fixturePath(key));
    exportModel(original, new Map(original.weights.map((w) => [w.name, w.data])), base, { quantized: 'requantize' });
    const same = await loadModel(base);
    for (const w of same.weights) assert.deepEqual(w.data, original.weights.find((x) => x.name === w.name)?.data, w.name);
    params.dispose();
  });
}

test("MatMulNBits with packed zero points, 4 and 8 bits, K not a multiple of the block: our dequantization is onnxruntime's", async () => {
  for (const bits of [4, 8]) {
    const k = 40;
    const n = 6;
    const blockSize = 16;
    const blocks = Math.ceil(k / blockSize);
    const s: MatMulNBitsSource = { kind: 'matmul-nbits', packed: 'B', scales: 'scales', zeroPoints: { name: 'zp', packed: true }, k, n, bits, blockSize };
    const w = Float32Array.from({ length: k * n }, (_, i) => Math.sin(i * 1.7) * 0.8);
    const scales = Float32Array.from({ length: n * blocks }, (_, i) => 0.01 + 0.003 * (i % 5));
    const zpRow = Math.ceil((blocks * bits) / 8);
    const zp = new Uint8Array(n * zpRow);
    for (let c = 0; c < n; c++)
      for (let b = 0; b < blocks; b++) {
        const v = (c * 3 + b * 5) % (1 << bits);
        zp[c * zpRow + ((b * bits) >> 3)] |= v << ((b * bits) & 7);
      }
    const packed = quantizeNBits(s, w, scales, zp);
    const deq = new Float32Array(k * n);
    dequantizeNBits(s, packed, scales, zp, deq);
    // Requantizing the dequantized values gives the same bytes.
    assert.deepEqual(quantizeNBits(s, deq, scales, zp), packed);

    const x = Float32Array.from({ length: 2 * k }, (_, i) => Math.cos(i * 0.3));
    const model = createModel({
      irVersion: 8,
      opsetImport: [
        { domain: '', version: 17 },
        { domain: 'com.microsoft', version: 1 },
      ],
      producerName: 'test',
      graph: {
        name: 'g',
        node: [node('MatMulNBits', ['x', 'B', 'scales', 'zp'], ['y'], 'mm', { K: k, N: n, bits, block_size: blockSize }, 'com.microsoft')],
        initializer: [
          rawTensor('B', DataType.UINT8, [n, blocks, (blockSize * bits) / 8], packed),
          rawTensor('scales', DataType.FLOAT, [n * blocks], new Uint8Array(scales.buffer)),
          rawTensor('zp', DataType.UINT8, [n * zpRow], zp),
        ],
        input: [valueInfo('x', DataType.FLOAT, [2, k])],
        output: [valueInfo('y', DataType.FLOAT, [2, n])],
      },
    });
    const session = await ort.InferenceSession.create(encodeModel(model), { intraOpNumThreads: 1 });
    const y = (await session.run({ x: new ort.Tensor('float32', x, [2, k]) })).y.data as Float32Array;
    await session.release();
    for (let r = 0; r < 2; r++)
      for (let c = 0; c < n; c++) {
        let sum = 0;
        for (let i = 0; i < k; i++) sum += x[r * k + i] * deq[i * n + c];
        assert.ok(Math.abs(sum - y[r * n + c]) <= 1e-4 * Math.max(1, Math.abs(sum)), `bits ${bits} [${r},${c}] ${sum} vs ${y[r * n + c]}`);
      }
  }
});

test('re-quantization rounds half to even, as QuantizeLinear does', () => {
  assert.deepEqual([-3.5, -2.5, -0.5, 0.5, 1.5, 2.5, 2.4, 2.6].map(roundHalfEven), [-4, -2, -0, 0, 2, 2, 2, 3]);
});
