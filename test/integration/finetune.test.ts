// The product's promise on its bundled model: zeroth-order fine-tuning on code it has not seen lowers
// the loss on held-out files of that code. Real model, real tokenizer, real onnxruntime; the data is
// ordinary TypeScript (the model was pretrained on Python and JS), generated from a seed so that the
// outcome does not move with this repository's own sources.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { loadDataset, type Dataset } from '../../trainer/data/dataset';
import { openEngine, type Engine } from '../../trainer/engine';
import { evaluateLoss } from '../../trainer/eval/loss';
import { runLocalTraining } from '../../trainer/local-run';
import { applyCheckpoint } from '../../trainer/zo/checkpoint';
import { writeCodeCorpus } from '../helpers/code-corpus';

let engine: Engine;
let data: Dataset;
let corpus: string;
const seqLen = 64;

before(async () => {
  engine = await openEngine({ threads: 2 });
  corpus = mkdtempSync(join(tmpdir(), 'fedkseed-finetune-'));
  writeCodeCorpus(corpus);
  data = await loadDataset(corpus, { tokenizer: engine.tokenizer, seqLen, include: ['**/*.ts'], heldOutFraction: 0.2 });
});
after(async () => {
  await engine.close();
  rmSync(corpus, { recursive: true, force: true });
});

it('ZO fine-tuning of the bundled model lowers held-out loss, and its checkpoint rebuilds the same model', async () => {
  assert.ok(data.train.length > 100 && data.heldOut.length > 20, `${data.train.length} train / ${data.heldOut.length} held-out windows`);
  const evals: number[] = [];
  const result = await runLocalTraining(
    engine,
    data,
    {
      steps: 500,
      k: 1024,
      federationSeed: 3,
      epsilon: 1e-3,
      eta: 1e-4,
      batchSize: 4,
      seqLen,
      evalEvery: 0,
      evalExamples: 48,
    },
    (e) => {
      if (e.type === 'eval') evals.push(e.heldOut.loss);
    },
  );
  assert.equal(result.stepsRun, 500);
  assert.equal(evals.length, 2);
  assert.ok(result.before && result.after, 'held-out data: evaluated before and after');
  assert.ok(result.after.loss < result.before.loss - 0.01, `held-out loss ${result.before.loss} → ${result.after.loss}`);

  // The checkpoint (base + K integers) rebuilds, from the model file, a model whose held-out loss
  // matches the one trained step by step.
  const base = await openEngine({ threads: 2 });
  try {
    applyCheckpoint(base.params, result.checkpoint, base.model.identity);
    const held = data.heldOut.slice(0, 48);
    const opts = { batchSize: 4, seqLen, padId: engine.tokenizer.padId };
    const fromCheckpoint = await evaluateLoss(base.session, held, opts);
    assert.ok(Math.abs(fromCheckpoint.loss - result.after.loss) < 1e-3, `checkpoint loss ${fromCheckpoint.loss} vs trained ${result.after.loss}`);
  } finally {
    await base.close();
  }
});
