// The rewritten training graph on a model built by another route (onnx-proto, no torch, no builder):
// its in-graph loss equals the closed-form loss for every storage type and cast route, the closed-form
// gradient agrees with central differences of the ONNX loss, and old opsets are raised or refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ModelError } from '../../trainer/model/errors';
import { nextTokenLabels } from '../../trainer/model/labels';
import { parseModel } from '../../trainer/model/load';
import { rewriteForTraining } from '../../trainer/model/rewrite';
import { ModelSession } from '../../trainer/device/session';
import { BIGRAM_BIAS, BIGRAM_TABLE, bigramLossAndGradient, buildBigramModel, type BigramModelOptions } from '../helpers/bigram-model';
import { rightPaddedBatch, weightMap } from './model-helpers';

const V = 11;

async function sessionFor(options: BigramModelOptions): Promise<{ session: ModelSession; weights: Map<string, Float32Array> }> {
  const model = parseModel(buildBigramModel(options).bytes, 'bigram.onnx');
  const session = await ModelSession.create(model, { intraOpNumThreads: 1 });
  const weights = weightMap(model.weights);
  session.bindWeights(weights);
  return { session, weights };
}

const variants: BigramModelOptions[] = [
  { vocab: V, seed: 5 },
  { vocab: V, seed: 5, storage: 'float16' },
  { vocab: V, seed: 5, storage: 'bfloat16' },
  { vocab: V, seed: 5, storage: 'float16', biasThroughHalfOp: true },
  { vocab: V, seed: 5, opset: 11 },
];

test('in-graph loss equals the closed-form loss for every storage, cast route and opset 11', async () => {
  const batch = rightPaddedBatch(V, [9, 6, 2], 9, 7);
  const labels = nextTokenLabels(batch.inputIds, batch.attentionMask, batch.batch, batch.seq);
  for (const options of variants) {
    const { session, weights } = await sessionFor(options);
    const truth = bigramLossAndGradient(weights.get(BIGRAM_TABLE) as Float32Array, weights.get(BIGRAM_BIAS) as Float32Array, V, { ...batch, labels });
    const got = await session.lossSum({ ...batch, labels });
    assert.equal(got.tokens, truth.tokens);
    const label = JSON.stringify(options);
    assert.ok(Math.abs(got.lossSum / got.tokens - truth.meanLoss) <= 1e-6 * truth.meanLoss, `${label}: ${got.lossSum / got.tokens} vs ${truth.meanLoss}`);
    await session.release();
  }
});

test('the closed-form gradient agrees with central differences of the ONNX loss', async () => {
  const { session, weights } = await sessionFor({ vocab: V, seed: 9, scale: 0.5 });
  const batch = rightPaddedBatch(V, [12, 8], 12, 3);
  const labels = nextTokenLabels(batch.inputIds, batch.attentionMask, batch.batch, batch.seq);
  const table = weights.get(BIGRAM_TABLE) as Float32Array;
  const bias = weights.get(BIGRAM_BIAS) as Float32Array;
  const truth = bigramLossAndGradient(table, bias, V, { ...batch, labels });
  const mean = async (): Promise<number> => {
    const r = await session.lossSum({ ...batch, labels });
    return r.lossSum / r.tokens;
  };
  // Directional derivative along a fixed ±1 direction over all weights, and single coordinates.
  const dir = (i: number): number => (Math.imul(i + 1, 0x9e3779b1) >>> 31 === 1 ? 1 : -1);
  const h = 1e-2;
  const shift = (s: number): void => {
    for (let i = 0; i < table.length; i++) table[i] += s * dir(i);
    for (let i = 0; i < bias.length; i++) bias[i] += s * dir(table.length + i);
  };
  const saved = [table.slice(), bias.slice()];
  shift(h);
  const plus = await mean();
  table.set(saved[0]);
  bias.set(saved[1]);
  shift(-h);
  const minus = await mean();
  table.set(saved[0]);
  bias.set(saved[1]);
  let expected = 0;
  for (let i = 0; i < table.length; i++) expected += truth.table[i] * dir(i);
  for (let i = 0; i < bias.length; i++) expected += truth.bias[i] * dir(table.length + i);
  const estimate = (plus - minus) / (2 * h);
  assert.ok(Math.abs(estimate - expected) <= 2e-3 * Math.max(1, Math.abs(expected)), `${estimate} vs ${expected}`);

  const row = Number(batch.inputIds[0]);
  const coord = row * V + Number(labels[0]);
  table[coord] += h;
  const up = await mean();
  table[coord] -= 2 * h;
  const down = await mean();
  table[coord] += h;
  assert.ok(truth.table[coord] < 0, 'raising the target logit lowers the loss');
  assert.ok(Math.abs((up - down) / (2 * h) - truth.table[coord]) <= 1e-3, `${(up - down) / (2 * h)} vs ${truth.table[coord]}`);
  await session.release();
});

test('opsets below 11 are refused for the in-graph loss with a clear error', () => {
  const model = parseModel(buildBigramModel({ vocab: V, seed: 1, opset: 10 }).bytes, 'old-opset.onnx');
  assert.throws(
    () => rewriteForTraining(model),
    (e: unknown) => e instanceof ModelError && /old-opset\.onnx: opset 10 is too old.*opset 12/.test(e.message),
  );
});
