// Export: the written file is a standard ONNX model that onnxruntime loads on its own, computes the
// same loss as the training session for the same weights, and gives back the weights bit for bit.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { exportModel } from '../../trainer/model/export';
import { gpt2Bytes } from '../../trainer/model/gpt2-builder';
import { nextTokenLabels } from '../../trainer/model/labels';
import { loadModel, parseModel, type LoadedModel } from '../../trainer/model/load';
import { ModelSession } from '../../trainer/device/session';
import { referenceLoss, rightPaddedBatch, weightMap } from './model-helpers';

const dir = mkdtempSync(join(tmpdir(), 'fedkseed-model-export-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Fine-tuning-like updates far below float16 resolution. */
function nudged(model: LoadedModel): Map<string, Float32Array> {
  return new Map(model.weights.map((w) => [w.name, w.data.map((x, i) => x + 1e-6 * Math.sin(i + w.name.length))]));
}

async function checkExported(base: LoadedModel, weights: Map<string, Float32Array>, path: string): Promise<void> {
  const vocab = base.io.vocab as number;
  const batch = rightPaddedBatch(vocab, [14, 9], 14, 5);
  const labels = nextTokenLabels(batch.inputIds, batch.attentionMask, batch.batch, batch.seq);

  const standalone = await ort.InferenceSession.create(path, { intraOpNumThreads: 1 });
  assert.deepEqual([...standalone.inputNames].sort(), [base.io.attentionMask.name, base.io.inputIds.name].sort());
  assert.deepEqual(standalone.outputNames, ['logits']);
  const logits = (
    await standalone.run({
      input_ids: new ort.Tensor('int64', batch.inputIds, [2, 14]),
      attention_mask: new ort.Tensor('int64', batch.attentionMask, [2, 14]),
    })
  ).logits.data as Float32Array;
  await standalone.release();
  const fromFile = referenceLoss(logits, labels, 2, 14, vocab);

  const session = await ModelSession.create(base, { intraOpNumThreads: 1 });
  session.bindWeights(weights);
  const trained = await session.lossSum({ ...batch, labels });
  await session.release();
  assert.ok(Math.abs(trained.lossSum - fromFile.sum) <= 2e-6 * fromFile.sum, `${trained.lossSum} vs ${fromFile.sum}`);

  const reloaded = await loadModel(path);
  assert.notEqual(reloaded.identity, base.identity);
  assert.deepEqual(reloaded.io, base.io);
  assert.deepEqual(
    reloaded.weights.map((w) => [w.name, w.dims]),
    base.weights.map((w) => [w.name, w.dims]),
  );
  for (const w of reloaded.weights) {
    assert.equal(w.storage, 'float32');
    assert.deepEqual(w.data, weights.get(w.name), w.name);
  }
}

test('export of the bundled float16 model: float32 weights, same loss, exact round trip', async () => {
  const base = await loadModel('models/tiny-code-lm/model.onnx');
  const weights = nudged(base);
  const path = join(dir, 'tuned.onnx');
  const result = exportModel(base, weights, path);
  assert.equal(result.externalDataPath, null);
  assert.ok(statSync(path).size > result.weightBytes);
  await checkExported(base, weights, path);
  // Unchanged weights export to a model with the base model's loss and weights.
  const same = join(dir, 'same.onnx');
  exportModel(base, weightMap(base.weights), same);
  const again = await loadModel(same);
  for (const w of again.weights) assert.deepEqual(w.data, base.weights.find((b) => b.name === w.name)?.data);
});

test('export with external data: a data file beside the model, loaded by onnxruntime and by the loader', async () => {
  const base = parseModel(
    gpt2Bytes({ vocab: 29, ctx: 16, dModel: 16, layers: 1, heads: 2, mlpRatio: 4, tiedEmbeddings: false, dtype: 'float16', seed: 2 }),
    'built.onnx',
  );
  const weights = nudged(base);
  const path = join(dir, 'external.onnx');
  const result = exportModel(base, weights, path, { externalDataThreshold: 0 });
  assert.equal(result.externalDataPath, `${path}.data`);
  assert.ok(existsSync(`${path}.data`));
  assert.ok(statSync(path).size < 20_000, 'weights are not inline');
  await checkExported(base, weights, path);
  // The identity covers the external data too, not just the .onnx bytes.
  const { createHash } = await import('node:crypto');
  const { readFileSync } = await import('node:fs');
  const identity = (await loadModel(path)).identity;
  assert.notEqual(identity, createHash('sha256').update(readFileSync(path)).digest('hex'));
  assert.equal(
    identity,
    createHash('sha256')
      .update(readFileSync(path))
      .update(readFileSync(`${path}.data`))
      .digest('hex'),
  );

  // A truncated data file is refused with the model named.
  const { truncateSync } = await import('node:fs');
  truncateSync(`${path}.data`, 1000);
  await assert.rejects(loadModel(path), (e: Error) => e.message.startsWith(path) && /truncated/.test(e.message));
});
