// The trainable set comes from how the graph reads each tensor: weights of MatMul/Gemm/Gather and
// normalisation scales are parameters; rotary caches, masks and scalars are not; a constant-folded
// transposed copy of a tied embedding is the embedding itself. Counts equal torch's parameter counts.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { exportModel } from '../../trainer/model/export';
import { loadModel } from '../../trainer/model/load';
import { ModelError } from '../../trainer/model/errors';
import { decodeModel } from '../../trainer/model/onnx';
import { globToRegExp, looksRotary } from '../../trainer/model/trainable';
import { fixtureLoss, fixturePath, parameterCount, reference, referenceBatch, weightArrays } from '../helpers/model-fixtures';

const dir = mkdtempSync(join(tmpdir(), 'fedkseed-parameters-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const LLAMA = 'llama-folded';

test('Llama-like export with constant folding: rotary caches and the mask are constants, the folded LM head is the embedding', async () => {
  const model = await loadModel(fixturePath(LLAMA));
  assert.equal(parameterCount(model), reference.models[LLAMA].parameters);
  assert.deepEqual(
    model.constants.map((c) => [c.name, c.reason]),
    [
      ['cos_cached', 'rotary cache'],
      ['sin_cached', 'rotary cache'],
      ['causal', 'read by Slice: not a weight slot'],
    ],
  );
  const embed = model.weights.find((w) => w.name === 'embed.weight');
  assert.ok(embed?.transposedCopies?.length === 1, 'one transposed copy');
  const copy = embed.transposedCopies[0];
  assert.ok(!model.weights.some((w) => w.name === copy), `${copy} is not a parameter of its own`);
  assert.match(embed.reason ?? '', /embedding \+ matmul weight \(tied/);
  assert.match(model.weights.find((w) => w.name === 'layers.0.norm_1')?.reason ?? '', /per-channel scale/);
  const { loss } = await fixtureLoss(model);
  assert.ok(Math.abs(loss - reference.models[LLAMA].loss) <= 1e-4, `${loss} vs ${reference.models[LLAMA].loss}`);
});

test('a trained tied embedding exports as one tensor read by both uses; reloaded, the loss and count are the same', async () => {
  const model = await loadModel(fixturePath(LLAMA));
  const weights = weightArrays(model.weights);
  const embed = weights.get('embed.weight') as Float32Array;
  for (let i = 0; i < embed.length; i += 7) embed[i] += 0.05;
  const trained = await fixtureLoss(model, weights);
  const out = join(dir, 'llama-tuned.onnx');
  exportModel(model, weights, out);
  const reloaded = await loadModel(out);
  assert.equal(parameterCount(reloaded), parameterCount(model));
  assert.deepEqual(reloaded.weights.find((w) => w.name === 'embed.weight')?.data, embed);
  const again = await fixtureLoss(reloaded);
  assert.ok(Math.abs(again.loss - trained.loss) <= 1e-6, `${again.loss} vs ${trained.loss}`);
  // The file runs on its own: the head reads the embedding transposed, so both uses moved together.
  const session = await ort.InferenceSession.create(out, { intraOpNumThreads: 1 });
  const b = referenceBatch();
  const positions = BigInt64Array.from({ length: b.batch * b.seq }, (_, i) => BigInt(i % b.seq));
  const logits = (
    await session.run({
      input_ids: new ort.Tensor('int64', b.inputIds, [b.batch, b.seq]),
      attention_mask: new ort.Tensor('int64', b.attentionMask, [b.batch, b.seq]),
      position_ids: new ort.Tensor('int64', positions, [b.batch, b.seq]),
    })
  ).logits;
  await session.release();
  assert.deepEqual(logits.dims, [b.batch, b.seq, 4096]);
  const graph = decodeModel(readFileSync(out)).graph;
  assert.ok(!graph.initializer.some((t) => t.name === model.weights.find((w) => w.name === 'embed.weight')?.transposedCopies?.[0]));
});

test('GPT-2 with a tied embedding read through a Transpose node: one tensor, torch parameter count', async () => {
  const model = await loadModel(fixturePath('gpt2-no-past'));
  assert.equal(parameterCount(model), reference.models['gpt2-no-past'].parameters);
  assert.deepEqual(model.constants, []);
  assert.equal(model.weights.find((w) => w.name === 'm.wte')?.reason, 'embedding + matmul weight');
  assert.equal(model.weights.find((w) => w.name === 'm.blocks.0.c_attn_b')?.reason, 'linear bias');
  assert.equal(model.weights.find((w) => w.name === 'm.ln_f.weight')?.reason, 'normalisation scale');
  assert.equal(model.vocabSize, 4096);
});

test('--trainable and --freeze globs choose the set; the layout is part of the identity', async () => {
  const path = fixturePath('gpt2-no-past');
  const all = await loadModel(path);
  const attention = await loadModel(path, { select: { trainable: ['*.c_attn_*'] } });
  assert.deepEqual(
    attention.weights.map((w) => w.name),
    ['m.blocks.0.c_attn_b', 'm.blocks.0.c_attn_w', 'm.blocks.1.c_attn_b', 'm.blocks.1.c_attn_w'],
  );
  assert.ok(attention.constants.some((c) => c.name === 'm.wte' && c.reason === 'frozen by the selection'));
  const frozen = await loadModel(path, { select: { freeze: ['m.wte', 'm.wpe'] } });
  assert.equal(parameterCount(frozen), parameterCount(all) - 4096 * 16 - 64 * 16);
  // The frozen embedding still computes: same loss as the full model.
  assert.ok(Math.abs((await fixtureLoss(frozen)).loss - (await fixtureLoss(all)).loss) < 1e-6);
  assert.notEqual(frozen.identity, all.identity);
  assert.notEqual(attention.identity, all.identity);
  assert.equal((await loadModel(path, { select: { freeze: ['m.wte', 'm.wpe'] } })).identity, frozen.identity);
  await assert.rejects(
    loadModel(path, { select: { freeze: ['nothing.*'] } }),
    (e: Error) => e instanceof ModelError && /'nothing\.\*' matches no tensor/.test(e.message),
  );
  await assert.rejects(loadModel(path, { select: { trainable: ['m.wte'], freeze: ['m.*'] } }), /nothing to train/);
});

test('the bundled model: every float initializer is a weight, so its identity stays the file hash', async () => {
  const model = await loadModel('models/tiny-code-lm/model.onnx');
  assert.equal(model.identity, '6ce7c3b4771473827d6ce6f9281ade09da60bad71c6c860b9f721f8dbe15d4e5');
  assert.equal(parameterCount(model), 2_615_424);
  const llama = await loadModel(fixturePath(LLAMA));
  const { createHash } = await import('node:crypto');
  assert.notEqual(
    llama.identity,
    createHash('sha256')
      .update(readFileSync(fixturePath(LLAMA)))
      .digest('hex'),
    'a layout with constants is hashed in',
  );
});

test('rotary tables and frequency vectors are recognised by their values; globs are literal but for * and ?', () => {
  const cos = new Float32Array(12).map((_, i) => Math.cos(Math.floor(i / 4) * (i % 4)));
  assert.ok(looksRotary(cos, [3, 4]));
  const sin = new Float32Array(12).map((_, i) => Math.sin(Math.floor(i / 4) * (i % 4)));
  assert.ok(looksRotary(sin, [3, 4]));
  assert.ok(!looksRotary(Float32Array.of(0.1, 0.2, 0.3, 0.4), [2, 2]));
  assert.ok(looksRotary(Float32Array.of(1, 0.1, 0.01, 0.001), [4]));
  assert.ok(!looksRotary(Float32Array.of(1, 1, 1, 1), [4]));
  assert.ok(globToRegExp('*.c_attn_?').test('m.blocks.0.c_attn_w'));
  assert.ok(!globToRegExp('m.wte').test('mXwte'));
});
