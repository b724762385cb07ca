// Models from the GPT-2 builder: they load as causal LMs, the training graph's loss matches the loss
// from their own logits, attention is causal with key padding, and the seed fixes the weights.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { buildGpt2, gpt2Bytes, gpt2ParamCount, GPT2_PRESETS, type Gpt2Config } from '../../trainer/model/gpt2-builder';
import { nextTokenLabels } from '../../trainer/model/labels';
import { parseModel } from '../../trainer/model/load';
import { ModelSession } from '../../trainer/device/session';
import { referenceLoss, rightPaddedBatch, weightMap } from './model-helpers';

const tiny: Gpt2Config = { vocab: 37, ctx: 16, dModel: 24, layers: 2, heads: 3, mlpRatio: 2, tiedEmbeddings: true, dtype: 'float32', seed: 11 };

async function logitsOf(bytes: Uint8Array, ids: BigInt64Array, mask: BigInt64Array, b: number, t: number): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  const out = await s.run({ input_ids: new ort.Tensor('int64', ids, [b, t]), attention_mask: new ort.Tensor('int64', mask, [b, t]) });
  await s.release();
  return out.logits.data as Float32Array;
}

for (const config of [tiny, { ...tiny, dtype: 'float16', tiedEmbeddings: false, opset: 18 } as Gpt2Config]) {
  test(`builder ${config.dtype}, ${config.tiedEmbeddings ? 'tied' : 'untied'}: parameter count, loss equals the loss from its logits`, async () => {
    const bytes = gpt2Bytes(config);
    const model = parseModel(bytes, 'built.onnx');
    assert.equal(model.io.vocab, config.vocab);
    assert.equal(
      model.weights.reduce((n, w) => n + w.data.length, 0),
      gpt2ParamCount(config),
    );
    assert.ok(model.weights.every((w) => w.storage === config.dtype));
    const batch = rightPaddedBatch(config.vocab, [16, 10, 3], 16, 4);
    const labels = nextTokenLabels(batch.inputIds, batch.attentionMask, batch.batch, batch.seq);
    const expected = referenceLoss(await logitsOf(bytes, batch.inputIds, batch.attentionMask, 3, 16), labels, 3, 16, config.vocab);
    const session = await ModelSession.create(model, { intraOpNumThreads: 1 });
    session.bindWeights(weightMap(model.weights));
    const got = await session.lossSum({ ...batch, labels });
    assert.equal(got.tokens, expected.tokens);
    assert.ok(Math.abs(got.lossSum - expected.sum) <= 1e-5 * expected.sum, `${got.lossSum} vs ${expected.sum}`);
    // Random init N(0, 0.02): close to uniform predictions.
    assert.ok(Math.abs(got.lossSum / got.tokens - Math.log(config.vocab)) < 0.1);
    await session.release();
  });
}

test('builder: attention is causal and ignores padded keys', async () => {
  const bytes = gpt2Bytes({ ...tiny, dModel: 24 });
  const { inputIds, attentionMask } = rightPaddedBatch(tiny.vocab, [12, 12], 12, 8);
  // Row 1 = row 0 with the last 4 tokens changed: positions 0..7 must not change.
  for (let t = 8; t < 12; t++) inputIds[12 + t] = BigInt((Number(inputIds[t]) + 5) % tiny.vocab);
  for (let t = 0; t < 8; t++) inputIds[12 + t] = inputIds[t];
  const logits = await logitsOf(bytes, inputIds, attentionMask, 2, 12);
  const V = tiny.vocab;
  for (let i = 0; i < 8 * V; i++) assert.ok(Math.abs(logits[i] - logits[12 * V + i]) < 1e-5);
  assert.ok(
    [...Array(4 * V).keys()].some((i) => Math.abs(logits[8 * V + i] - logits[20 * V + i]) > 1e-4),
    'later tokens do change later logits',
  );

  // Padding: a row padded to 12 gives the same logits on its real positions as the row alone.
  const padded = rightPaddedBatch(tiny.vocab, [7], 12, 9);
  const alone = { ids: padded.inputIds.slice(0, 7), mask: padded.attentionMask.slice(0, 7) };
  const a = await logitsOf(bytes, padded.inputIds, padded.attentionMask, 1, 12);
  const b = await logitsOf(bytes, alone.ids, alone.mask, 1, 7);
  for (let i = 0; i < 7 * V; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5);
});

test('builder: the seed fixes the weights; presets have the advertised sizes', () => {
  const w = (seed: number): Float32Array =>
    parseModel(gpt2Bytes({ ...tiny, seed }), 'x').weights.find((x) => x.name === 'transformer.wte.weight')?.data as Float32Array;
  assert.deepEqual(w(1), w(1));
  assert.notDeepEqual(w(1), w(2));
  const std = Math.sqrt(w(3).reduce((s, x) => s + x * x, 0) / w(3).length);
  assert.ok(Math.abs(std - 0.02) < 0.002, `std ${std}`);
  assert.equal(buildGpt2(tiny).graph.initializer.filter((t) => t.dataType === 1).length, 2 + tiny.layers * 12 + 2);
  const small = gpt2ParamCount(GPT2_PRESETS['gpt2-small']);
  assert.ok(small > 124e6 && small < 125e6, `${small}`);
  const ten = gpt2ParamCount(GPT2_PRESETS['zo-10m']);
  assert.ok(ten > 9e6 && ten < 11e6, `${ten}`);
});

test('a model with a position_ids input is fed positions 0..T-1 per row', async () => {
  const plain = parseModel(gpt2Bytes(tiny), 'plain.onnx');
  const withPositions = parseModel(gpt2Bytes({ ...tiny, positionIdsInput: true }), 'positions.onnx');
  assert.equal(withPositions.io.positionIds?.name, 'position_ids');
  const batch = rightPaddedBatch(tiny.vocab, [16, 5], 16, 12);
  const labels = nextTokenLabels(batch.inputIds, batch.attentionMask, batch.batch, batch.seq);
  const losses: number[] = [];
  for (const model of [plain, withPositions]) {
    const session = await ModelSession.create(model, { intraOpNumThreads: 1 });
    session.bindWeights(weightMap(model.weights));
    losses.push((await session.lossSum({ ...batch, labels })).lossSum);
    await session.release();
  }
  assert.ok(Math.abs(losses[0] - losses[1]) <= 1e-6 * losses[0], `${losses[0]} vs ${losses[1]}`);
});
