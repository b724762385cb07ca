// Held-out loss aggregation and the Rouge-L evaluation loop, against stand-in model functions
// (the real session is tested with the model code).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TokenBatch } from '../../trainer/data/batches';
import type { Example } from '../../trainer/data/examples';
import type { TextTokenizer } from '../../trainer/data/tokenizer';
import { evaluateRougeL } from '../../trainer/eval/evaluate-rouge';
import type { NextTokenModel } from '../../trainer/model/generate';
import { LossAccumulator, evaluateLoss } from '../../trainer/eval/loss';

test('loss is token-weighted: sum of token losses / tokens, perplexity = exp', () => {
  const acc = new LossAccumulator();
  assert.ok(Number.isNaN(acc.summary().loss));
  acc.add({ lossSum: 6, tokens: 3 });
  acc.add({ lossSum: 1, tokens: 2 });
  // (6 + 1) / (3 + 2) = 1.4, not the mean of batch means (2 + 0.5) / 2 = 1.25.
  assert.deepEqual(acc.summary(), { loss: 1.4, perplexity: Math.exp(1.4), tokens: 5 });
  assert.throws(() => acc.add({ lossSum: Number.NaN, tokens: 1 }), /loss sum is not finite/);
  assert.throws(() => acc.add({ lossSum: 1, tokens: -1 }), /non-negative integer/);
});

test('evaluateLoss feeds every example once and aggregates what the model returns', async () => {
  const ex = (ids: number[]): Example => ({ id: String(ids), group: 'g', splitKey: String(ids), ids: Int32Array.from(ids) });
  // Stand-in loss: each target label v costs v / 10 nats.
  const model = {
    async lossSum(b: TokenBatch) {
      let lossSum = 0;
      let tokens = 0;
      for (const l of b.labels) {
        if (l === -100n) continue;
        lossSum += Number(l) / 10;
        tokens++;
      }
      return { lossSum, tokens };
    },
  };
  // Targets: [1 2 3] → 2, 3; [4 5] → 5. Loss (0.2 + 0.3 + 0.5) / 3.
  const s = await evaluateLoss(model, [ex([1, 2, 3]), ex([4, 5])], { batchSize: 1, seqLen: 8, padId: 0 });
  assert.equal(s.tokens, 3);
  assert.ok(Math.abs(s.loss - 1.0 / 3) < 1e-12);
});

test('evaluateRougeL generates from each prompt, decodes and scores against the reference', async () => {
  const chars: TextTokenizer = {
    encode: (t) => Array.from(t, (c) => c.charCodeAt(0)),
    decode: (ids) => String.fromCharCode(...Array.from(ids)),
    eosId: 0,
    padId: 0,
    bosId: undefined,
    vocabSize: 128,
  };
  const answer = 'yes it is';
  // Stand-in: after a 2-token prompt, spell out `answer`, then EOS.
  const model: NextTokenModel = {
    async lastLogits(_ids, mask, batch, seq) {
      const logits = new Float32Array(batch * 128);
      for (let b = 0; b < batch; b++) {
        let len = 0;
        while (len < seq && mask[b * seq + len] === 1n) len++;
        const k = len - 2;
        logits[b * 128 + (k < answer.length ? answer.charCodeAt(k) : 0)] = 1;
      }
      return logits;
    },
  };
  const prompt = (reference: string): Example => ({
    id: reference,
    group: 'g',
    splitKey: reference,
    ids: Int32Array.from([81, 58, 120]),
    promptLength: 2,
    reference,
  });
  const r = await evaluateRougeL(model, chars, [prompt('yes it is'), prompt('no')]);
  assert.deepEqual(r.hypotheses, [answer, answer]);
  // Scores: identical text → P = R = 1, F = 2·((1·1)/(1 + 1 + 1e-8)); "no" shares no word → 0.
  const perfect = 2.0 * ((1 * 1) / (1 + 1 + 1e-8));
  assert.deepEqual(r.scores, [perfect, 0]);
  assert.equal(r.rougeL, perfect / 2);
  await assert.rejects(
    evaluateRougeL(model, chars, [{ id: 'x', group: 'g', splitKey: 'x', ids: Int32Array.from([1, 2]) }]),
    /example x has no prompt\/reference/,
  );
});
