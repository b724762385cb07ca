// Greedy generation. The model here is a stand-in whose argmax sequence is known by construction
// (next token = last real token + 1); the real onnxruntime session's lastLogits is tested with the
// model code. The stand-in also checks that every batch it receives is right-padded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { argmaxRow, greedyGenerate, type NextTokenModel } from '../../trainer/model/generate';

const VOCAB = 8;
const EOS = 7;
const PAD = 0;

function counterModel(calls: { batch: number; seq: number }[]): NextTokenModel {
  return {
    async lastLogits(inputIds, attentionMask, batch, seq) {
      calls.push({ batch, seq });
      const logits = new Float32Array(batch * VOCAB);
      for (let b = 0; b < batch; b++) {
        let len = 0;
        while (len < seq && attentionMask[b * seq + len] === 1n) len++;
        for (let t = len; t < seq; t++) {
          assert.equal(attentionMask[b * seq + t], 0n, 'mask must be 1…1 0…0');
          assert.equal(inputIds[b * seq + t], BigInt(PAD), 'padding must use the pad id');
        }
        const last = Number(inputIds[b * seq + len - 1]);
        logits[b * VOCAB + ((last + 1) % VOCAB)] = 1; // one-hot on last + 1
      }
      return logits;
    },
  };
}

test('rows stop at EOS or maxNewTokens; finished rows leave the batch', async () => {
  const calls: { batch: number; seq: number }[] = [];
  const out = await greedyGenerate(counterModel(calls), [[3], [1, 2], [6]], { maxNewTokens: 4, eosId: EOS, padId: PAD });
  // [3] → 4 5 6 then 7 = EOS; [1 2] → 3 4 5 6 (4 new tokens); [6] → 7 = EOS at once.
  assert.deepEqual(out, [
    { tokens: [4, 5, 6], finish: 'eos' },
    { tokens: [3, 4, 5, 6], finish: 'max-new-tokens' },
    { tokens: [], finish: 'eos' },
  ]);
  // Step 1 runs all 3 rows (longest 2); then rows [3…] and [1 2 …] grow by one per step.
  assert.deepEqual(calls, [
    { batch: 3, seq: 2 },
    { batch: 2, seq: 3 },
    { batch: 2, seq: 4 },
    { batch: 2, seq: 5 },
  ]);
});

test('a row stops at the model context length; batchSize splits the prompts, order is kept', async () => {
  const calls: { batch: number; seq: number }[] = [];
  const model = counterModel(calls);
  // [1 2] with maxLength 4: 3 (length 3), 4 (length 4) → stop.
  assert.deepEqual(await greedyGenerate(model, [[1, 2]], { maxNewTokens: 10, eosId: EOS, padId: PAD, maxLength: 4 }), [
    { tokens: [3, 4], finish: 'max-length' },
  ]);
  assert.deepEqual(await greedyGenerate(model, [[1, 2, 3, 4]], { maxNewTokens: 10, eosId: EOS, padId: PAD, maxLength: 4 }), [
    { tokens: [], finish: 'max-length' },
  ]);
  calls.length = 0;
  const one = await greedyGenerate(model, [[3], [1, 2], [6]], { maxNewTokens: 4, eosId: EOS, padId: PAD, batchSize: 1 });
  assert.deepEqual(
    one.map((g) => g.tokens),
    [[4, 5, 6], [3, 4, 5, 6], []],
  );
  assert.ok(calls.every((c) => c.batch === 1));
  await assert.rejects(greedyGenerate(model, [[]], { maxNewTokens: 1, eosId: EOS, padId: PAD }), /prompt 0 is empty/);
});

test('argmax takes the first of equal maxima and refuses a row without a finite logit', () => {
  const logits = Float32Array.from([0, 2, 2, 1, NaN, NaN, NaN, NaN]);
  assert.equal(argmaxRow(logits, 0, 4), 1);
  assert.throws(() => argmaxRow(logits, 1, 4), /row 1: the model returned no finite logit/);
});
