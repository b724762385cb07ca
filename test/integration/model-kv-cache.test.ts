// Decoders exported with a KV cache (Optimum's decoder_with_past_model.onnx and decoder_model_merged.onnx,
// transformers.js' onnx/model.onnx): the loss runs them with an empty past and matches torch, the training
// graph has neither past inputs nor present outputs, greedy decoding uses the cache (one prompt forward,
// then one-token steps) and gives torch's tokens, and a trained model exports with its interface intact.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { greedyGenerate, type IncrementalDecoder } from '../../trainer/model/generate';
import { CachedDecoder } from '../../trainer/model/decoder';
import { exportModel } from '../../trainer/model/export';
import { gpt2Bytes, type Gpt2Config } from '../../trainer/model/gpt2-builder';
import { nextTokenLabels } from '../../trainer/model/labels';
import { loadModel, parseModel } from '../../trainer/model/load';
import { decodeModel } from '../../trainer/model/onnx';
import { rewriteForTraining } from '../../trainer/model/rewrite';
import { ModelSession } from '../../trainer/device/session';
import { ParameterSet } from '../../trainer/zo/parameters';
import { SeedSampler } from '../../trainer/zo/seed-sampler';
import { ZoTrainer } from '../../trainer/zo/zo-trainer';
import { fixtureLoss, fixturePath, parameterCount, reference, referenceBatch, weightArrays } from '../helpers/model-fixtures';

const dir = mkdtempSync(join(tmpdir(), 'fedkseed-kv-cache-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const CACHED = ['optimum-gpt2/decoder_with_past_model', 'optimum-gpt2/decoder_model_merged', 'transformersjs-gpt2/model'];

for (const key of [...CACHED, 'optimum-gpt2/decoder_model', 'gpt2-no-past']) {
  test(`${key}: loss equals torch's within 1e-4, every parameter counted once`, async () => {
    const model = await loadModel(fixturePath(key));
    const ref = reference.models[key];
    const { loss, tokens } = await fixtureLoss(model);
    assert.equal(tokens, ref.tokens);
    assert.ok(Math.abs(loss - ref.loss) <= 1e-4, `${loss} vs torch ${ref.loss}`);
    assert.equal(parameterCount(model), ref.parameters);
  });
}

test('the training graph of a KV-cache decoder has no past inputs, no use_cache_branch and no present outputs', async () => {
  for (const key of CACHED) {
    const model = await loadModel(fixturePath(key));
    assert.ok(model.io.cache, key);
    assert.deepEqual(
      model.io.cache.past.map((p) => [p.name, p.present, p.sequenceAxis, p.dims]),
      [0, 1].flatMap((l) => ['key', 'value'].map((kv) => [`past_key_values.${l}.${kv}`, `present.${l}.${kv}`, 2, [null, 2, null, 8]])),
    );
    assert.equal(model.io.cache.useCacheBranch, key.endsWith('with_past_model') ? null : 'use_cache_branch');
    const graph = decodeModel(rewriteForTraining(model).bytes).graph;
    const inputs = graph.input.map((v) => v.name).filter((n) => !model.weights.some((w) => w.name === n));
    assert.deepEqual(inputs.sort(), ['attention_mask', 'input_ids', 'labels', 'position_ids']);
    assert.ok(!graph.output.some((v) => v.name.startsWith('present')), key);
    assert.ok(!graph.node.some((n) => n.opType === 'If'), `${key}: the no-cache branch replaces the If`);
  }
});

/** Counts the decoder's forwards and the tokens each one runs. */
function counting(decoder: IncrementalDecoder): { decoder: IncrementalDecoder; prefills: number[]; steps: number[] } {
  const prefills: number[] = [];
  const steps: number[] = [];
  return {
    prefills,
    steps,
    decoder: {
      prefill: (ids, rows, seq) => (prefills.push(rows * seq), decoder.prefill(ids, rows, seq)),
      step: (state, keep, tokens) => (steps.push(tokens.length), decoder.step(state, keep, tokens)),
    },
  };
}

test('cached greedy decoding: torch tokens, the same as without the cache, one token per row and step', async () => {
  const { prompts, max_new_tokens: maxNewTokens, eos } = reference.generation;
  for (const key of CACHED) {
    const model = await loadModel(fixturePath(key));
    const weights = weightArrays(model.weights);
    const session = await ModelSession.create(model, { intraOpNumThreads: 1 });
    session.bindWeights(weights);
    const decoder = await CachedDecoder.create(model, { intraOpNumThreads: 1 });
    decoder.bindWeights(weights);
    const options = { maxNewTokens, eosId: eos, padId: eos };
    const count = counting(decoder);
    const cached = await greedyGenerate({ lastLogits: (...a) => session.lastLogits(...a), decoder: count.decoder }, prompts, options);
    const uncached = await greedyGenerate(session, prompts, options);
    assert.deepEqual(
      cached.map((g) => g.tokens),
      reference.models[key].greedy,
      key,
    );
    assert.deepEqual(
      uncached.map((g) => g.tokens),
      reference.models[key].greedy,
      key,
    );
    // Prompts of different lengths decode as separate groups: one prompt forward each, then one-token steps.
    assert.deepEqual(
      count.prefills,
      prompts.map((p) => p.length),
    );
    assert.equal(count.steps.length, 2 * (maxNewTokens - 1));
    assert.ok(count.steps.every((n) => n === 1));
    await decoder.release();
    await session.release();
  }
});

test('a row that stops early leaves the cache: the others go on with their own rows', async () => {
  const model = await loadModel(fixturePath('optimum-gpt2/decoder_model_merged'));
  const weights = weightArrays(model.weights);
  const decoder = await CachedDecoder.create(model, { intraOpNumThreads: 1 });
  decoder.bindWeights(weights);
  const session = await ModelSession.create(model, { intraOpNumThreads: 1 });
  session.bindWeights(weights);
  const prompts = [
    [5, 6, 7],
    [8, 9, 10],
    [11, 12, 13],
  ];
  // Row 1's third token is its EOS: it leaves after two tokens.
  const plain = await greedyGenerate(session, prompts, { maxNewTokens: 6, eosId: 4095, padId: 4095 });
  const eos = plain[1].tokens[2];
  const expected = await greedyGenerate(session, prompts, { maxNewTokens: 6, eosId: eos, padId: 4095 });
  const count = counting(decoder);
  const got = await greedyGenerate({ lastLogits: (...a) => session.lastLogits(...a), decoder: count.decoder }, prompts, {
    maxNewTokens: 6,
    eosId: eos,
    padId: 4095,
  });
  assert.deepEqual(got, expected);
  assert.equal(got[1].finish, 'eos');
  assert.ok(count.steps.includes(2), `the batch shrinks: ${count.steps}`);
  await decoder.release();
  await session.release();
});

test('train a merged decoder a few steps, export it: the If and the cache interface stay, the loss is the trained one', async () => {
  const model = await loadModel(fixturePath('optimum-gpt2/decoder_model_merged'));
  const params = new ParameterSet(model.weights, { kernel: 'js' });
  const session = await ModelSession.create(model, { intraOpNumThreads: 1 });
  params.bindTo(session);
  const batch = referenceBatch();
  const before = await session.lossSum(batch);
  const trainer = new ZoTrainer(params, session, { federationSeed: 3, k: 16, epsilon: 1e-3, eta: 2e-3 });
  await trainer.train({ steps: 6, seeds: new SeedSampler(16, 9), nextBatch: () => batch });
  const trained = await session.lossSum(batch);
  assert.notEqual(trained.lossSum, before.lossSum);

  const out = join(dir, 'merged-tuned.onnx');
  exportModel(model, params.weights, out);
  const file = decodeModel(new Uint8Array(await import('node:fs').then((fs) => fs.readFileSync(out)))).graph;
  assert.ok(file.node.some((n) => n.opType === 'If'));
  assert.ok(file.input.some((v) => v.name === 'use_cache_branch'));
  assert.ok(file.output.some((v) => v.name === 'present.1.value'));
  const reloaded = await loadModel(out);
  const { loss } = await fixtureLoss(reloaded);
  assert.ok(Math.abs(loss - trained.lossSum / trained.tokens) <= 1e-6, `${loss} vs ${trained.lossSum / trained.tokens}`);
  // onnxruntime runs the exported file on its own, with the cache.
  const standalone = await ort.InferenceSession.create(out, { intraOpNumThreads: 1 });
  assert.ok(standalone.outputNames.includes('present.0.key'));
  await standalone.release();
  params.dispose();
  await session.release();
});

test('the GPT-2 builder with a KV cache: the same loss as without, and cached decoding gives the same tokens', async () => {
  const config: Gpt2Config = { vocab: 64, ctx: 32, dModel: 16, layers: 2, heads: 2, mlpRatio: 4, tiedEmbeddings: true, dtype: 'float32', seed: 4 };
  const plain = parseModel(gpt2Bytes(config), 'plain.onnx');
  const withPast = parseModel(gpt2Bytes({ ...config, kvCache: true }), 'with-past.onnx');
  assert.equal(withPast.io.cache?.past.length, 4);
  assert.equal(withPast.identity === plain.identity, false);
  const ids = BigInt64Array.from({ length: 2 * 9 }, (_, i) => BigInt((i * 7 + 3) % 64));
  const mask = BigInt64Array.from({ length: 2 * 9 }, (_, i) => (i < 9 || i % 9 < 5 ? 1n : 0n));
  const batch = { inputIds: ids, attentionMask: mask, labels: nextTokenLabels(ids, mask, 2, 9), batch: 2, seq: 9 };
  const sessions = await Promise.all([plain, withPast].map((m) => ModelSession.create(m, { intraOpNumThreads: 1 })));
  sessions.forEach((s, i) => s.bindWeights(weightArrays([plain, withPast][i].weights)));
  const [a, b] = await Promise.all(sessions.map((s) => s.lossSum(batch)));
  assert.ok(Math.abs(a.lossSum - b.lossSum) <= 1e-6 * a.lossSum, `${a.lossSum} vs ${b.lossSum}`);
  const decoder = await CachedDecoder.create(withPast, { intraOpNumThreads: 1 });
  decoder.bindWeights(weightArrays(withPast.weights));
  const prompts = [
    [1, 2, 3],
    [4, 5],
    [6, 7, 8],
  ];
  const options = { maxNewTokens: 12, eosId: -1, padId: 0 };
  const expected = await greedyGenerate(sessions[0], prompts, options);
  assert.deepEqual(await greedyGenerate({ lastLogits: (...x) => sessions[1].lastLogits(...x), decoder }, prompts, options), expected);
  await decoder.release();
  for (const s of sessions) await s.release();
});
