// Per-token losses from one batched forward over a window's prefixes (what simulate's report shades)
// against the training graph's own loss of the whole window: their sum is its loss sum, on the bundled
// model and on real code windows.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { collate } from '../../trainer/data/batches';
import { loadDataset } from '../../trainer/data/dataset';
import { openEngine } from '../../trainer/engine';
import { tokenLoss, tokenLosses } from '../../trainer/eval/token-losses';
import { writeCodeCorpus } from '../helpers/code-corpus';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedkseed-token-losses-'));
  writeCodeCorpus(join(dir, 'code'), 6);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('tokenLoss is −log softmax, stable for large logits', () => {
  const logits = Float32Array.from([1000, 1000, 999, 0, 0, 0]);
  assert.ok(Math.abs(tokenLoss(logits, 0, 3, 0) - Math.log(2 + Math.exp(-1))) < 1e-9);
  assert.ok(Math.abs(tokenLoss(logits, 1, 3, 2) - Math.log(3)) < 1e-9);
});

test("a window's per-token losses sum to the training graph's loss sum of that window", async () => {
  const engine = await openEngine({ threads: 1 });
  try {
    const data = await loadDataset(join(dir, 'code'), { tokenizer: engine.tokenizer, seqLen: 48, heldOutFraction: 0 });
    const windows = data.train.filter((e) => e.ids.length >= 16).slice(0, 3);
    assert.equal(windows.length, 3);
    for (const e of windows) {
      const losses = await tokenLosses(engine.generator, e.ids, engine.tokenizer.padId);
      assert.equal(losses.length, e.ids.length - 1);
      assert.ok(losses.every((x) => Number.isFinite(x) && x >= 0));
      const whole = await engine.session.lossSum(collate([e], { seqLen: e.ids.length, padId: engine.tokenizer.padId }));
      assert.equal(whole.tokens, losses.length);
      const sum = losses.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - whole.lossSum) < 1e-3 * losses.length, `per-token sum ${sum} vs the graph's ${whole.lossSum}`);
    }
  } finally {
    await engine.close();
  }
});
