// loadDataset end to end on the fixtures with the bundled model's tokenizer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadDataset } from '../../trainer/data/dataset';
import { targetCount } from '../../trainer/data/examples';
import { loadTokenizer } from '../../trainer/data/tokenizer';

const tokenizer = loadTokenizer(join(import.meta.dirname, '../../models/tiny-code-lm'));
const FIX = join(import.meta.dirname, '../fixtures/data');

test('Dolly fixture: 3 good lines become examples split between train and held-out, 4 problems come back', async () => {
  const seen: number[] = [];
  const d = await loadDataset(join(FIX, 'dolly.jsonl'), { tokenizer, seqLen: 256, heldOutFraction: 0.5, onProblem: (p) => seen.push(p.line) });
  const all = [...d.train, ...d.heldOut];
  assert.deepEqual(all.map((e) => e.id).sort(), ['dolly.jsonl:1', 'dolly.jsonl:2', 'dolly.jsonl:8']);
  assert.deepEqual(seen, [3, 4, 6, 7]);
  assert.equal(d.problems.length, 4);
  assert.equal(
    d.trainTargets,
    d.train.reduce((n, e) => n + targetCount(e), 0),
  );
  // Every instruction example ends with EOS, a target.
  for (const e of all) assert.equal(e.ids[e.ids.length - 1], tokenizer.eosId);
  const again = await loadDataset(join(FIX, 'dolly.jsonl'), { tokenizer, seqLen: 256, heldOutFraction: 0.5 });
  assert.deepEqual(
    again.heldOut.map((e) => e.id),
    d.heldOut.map((e) => e.id),
  );
});

test('code fixture: windows of one file stay on one side of the split', async () => {
  const d = await loadDataset(join(FIX, 'code'), { tokenizer, seqLen: 4, heldOutFraction: 0.5 });
  const trainFiles = new Set(d.train.map((e) => e.splitKey));
  assert.ok(d.heldOut.every((e) => !trainFiles.has(e.splitKey)));
  assert.deepEqual([...new Set([...d.train, ...d.heldOut].map((e) => e.group))].sort(), ['.', 'pkg-a', 'pkg-b']);
});
