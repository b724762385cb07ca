// Collation into int64 tensors, the seeded training sampler and the evaluation iterator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchSampler, collate, evalBatches } from '../../trainer/data/batches';
import type { Example } from '../../trainer/data/examples';

const ex = (id: string, ids: number[], lossMask?: number[]): Example => ({
  id,
  group: 'g',
  splitKey: id,
  ids: Int32Array.from(ids),
  ...(lossMask ? { lossMask: Uint8Array.from(lossMask) } : {}),
});
const nums = (a: BigInt64Array) => Array.from(a, Number);

test('collate: right padding to the longest row, labels shifted onto loss tokens', () => {
  const PAD = 99;
  // Row 0: a prompt (10, 11) and an answer (12, 13): only positions predicting 12 and 13 get labels.
  // Row 1: plain text, every next token is a label; shorter, so padded.
  const b = collate([ex('a', [10, 11, 12, 13], [0, 0, 1, 1]), ex('b', [20, 21])], { seqLen: 8, padId: PAD });
  assert.equal(b.batch, 2);
  assert.equal(b.seq, 4);
  assert.deepEqual(nums(b.inputIds), [10, 11, 12, 13, 20, 21, PAD, PAD]);
  assert.deepEqual(nums(b.attentionMask), [1, 1, 1, 1, 1, 1, 0, 0]);
  // labels[t] = ids[t+1] if mask[t+1]: row 0 → [-100 (11 is prompt), 12, 13, -100 (end)];
  // row 1 → [21, -100 (end), -100, -100 (padding)].
  assert.deepEqual(nums(b.labels), [-100, 12, 13, -100, 21, -100, -100, -100]);
});

test('collate: rows longer than seqLen are cut, and the cut row predicts nothing past it', () => {
  const b = collate([ex('a', [1, 2, 3, 4, 5])], { seqLen: 3, padId: 0 });
  assert.equal(b.seq, 3);
  assert.deepEqual(nums(b.inputIds), [1, 2, 3]);
  // Token 4 is outside the window, so position 2 has no label.
  assert.deepEqual(nums(b.labels), [2, 3, -100]);
  assert.throws(() => collate([], { seqLen: 3, padId: 0 }), RangeError);
});

test('sampler: each epoch is a permutation, the stream depends only on the seed, resumes at any step', () => {
  const data = Array.from({ length: 10 }, (_, i) => ex(`e${i}`, [i, i + 1]));
  const opts = { batchSize: 4, seed: 3, seqLen: 8, padId: 0 };
  const s = new BatchSampler(data, opts);
  // 5 batches of 4 = 20 draws = exactly two epochs of 10 (batch 2 straddles them).
  const draws = [0, 1, 2, 3, 4].flatMap((step) => s.examplesAt(step).map((e) => e.id));
  assert.deepEqual([...draws.slice(0, 10)].sort(), data.map((e) => e.id).sort());
  assert.deepEqual([...draws.slice(10)].sort(), data.map((e) => e.id).sort());
  assert.notDeepEqual(draws.slice(0, 10), draws.slice(10));
  const again = new BatchSampler(data, opts);
  const first = [again.next(), again.next(), again.next()];
  const resumed = new BatchSampler(data, opts, 2);
  assert.equal(resumed.step, 2);
  assert.deepEqual(resumed.next(), first[2]);
  assert.notDeepEqual(new BatchSampler(data, { ...opts, seed: 4 }).examplesAt(0), s.examplesAt(0));
});

test('eval batches: every example once, in order, last batch smaller', () => {
  const data = Array.from({ length: 5 }, (_, i) => ex(`e${i}`, [i, 7]));
  const batches = [...evalBatches(data, { batchSize: 2, seqLen: 8, padId: 0 })];
  assert.deepEqual(
    batches.map((b) => b.batch),
    [2, 2, 1],
  );
  assert.deepEqual(
    batches.flatMap((b) => nums(b.inputIds).filter((_, i) => i % 2 === 0)),
    [0, 1, 2, 3, 4],
  );
});
