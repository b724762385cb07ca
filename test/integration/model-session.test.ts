// The training graph of the bundled model computes the same masked next-token loss as JavaScript does
// from the ORIGINAL model's logits, and bound weight arrays are read in place on every run.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../trainer/model/load';
import { nextTokenLabels } from '../../trainer/model/labels';
import { ModelSession } from '../../trainer/device/session';
import { rightPaddedBatch, referenceLoss, weightMap } from './model-helpers';

const MODEL = 'models/tiny-code-lm/model.onnx';

test('bundled model: in-graph loss equals the loss from the original logits (right padding)', async () => {
  const model = await loadModel(MODEL);
  const vocab = model.io.vocab ?? 0;
  assert.equal(vocab, 4096);
  const batch = rightPaddedBatch(vocab, [20, 13, 4], 20, 1);
  const labels = nextTokenLabels(batch.inputIds, batch.attentionMask, batch.batch, batch.seq);

  const original = await ort.InferenceSession.create(readFileSync(MODEL));
  const logits = (
    await original.run({
      input_ids: new ort.Tensor('int64', batch.inputIds, [batch.batch, batch.seq]),
      attention_mask: new ort.Tensor('int64', batch.attentionMask, [batch.batch, batch.seq]),
    })
  ).logits.data as Float32Array;
  const expected = referenceLoss(logits, labels, batch.batch, batch.seq, vocab);
  await original.release();

  const session = await ModelSession.create(model, { intraOpNumThreads: 1 });
  session.bindWeights(weightMap(model.weights));
  const got = await session.lossSum({ ...batch, labels });
  assert.equal(got.tokens, 19 + 12 + 3);
  assert.equal(got.tokens, expected.tokens);
  assert.ok(Math.abs(got.lossSum - expected.sum) <= 1e-5 * expected.sum, `${got.lossSum} vs ${expected.sum}`);
  for (let b = 0; b < batch.batch; b++) {
    assert.ok(Math.abs(got.perExample[b] - expected.perRow[b]) <= 1e-5 * expected.perRow[b], `row ${b}`);
  }

  // Last-position logits: row b's logits at index length_b - 1.
  const last = await session.lastLogits(batch.inputIds, batch.attentionMask, batch.batch, batch.seq);
  assert.equal(last.length, batch.batch * vocab);
  [20, 13, 4].forEach((len, b) => {
    const at = (b * batch.seq + len - 1) * vocab;
    for (let v = 0; v < vocab; v += 97) assert.ok(Math.abs(last[b * vocab + v] - logits[at + v]) <= 1e-4, `row ${b} v ${v}`);
  });
  await session.release();
});

test('bound weights are read in place: mutating an array changes the next loss, restoring restores it', async () => {
  const model = await loadModel(MODEL);
  const session = await ModelSession.create(model, { intraOpNumThreads: 1 });
  const weights = weightMap(model.weights);
  session.bindWeights(weights);
  const batch = rightPaddedBatch(4096, [12, 7], 12, 2);
  const labels = nextTokenLabels(batch.inputIds, batch.attentionMask, batch.batch, batch.seq);
  const before = (await session.lossSum({ ...batch, labels })).lossSum;
  const lnf = weights.get('transformer.ln_f.weight') as Float32Array;
  const saved = lnf.slice();
  lnf.fill(0.25);
  const changed = (await session.lossSum({ ...batch, labels })).lossSum;
  assert.notEqual(changed, before);
  lnf.set(saved);
  const restored = (await session.lossSum({ ...batch, labels })).lossSum;
  assert.equal(restored, before);
  await session.release();
});
