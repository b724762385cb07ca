// A step whose session reads both losses in one go (BatchLoss.lossPair, as the device engine does) keeps
// the step's order: the same (seed, g) pairs and weight bits as awaiting each loss, and when the second
// forward fails after the −2εz pass, the same restored weights as the awaited step failing there.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TokenBatch } from '../../trainer/data/batches';
import { ParameterSet } from '../../trainer/zo/parameters';
import { SeedSampler } from '../../trainer/zo/seed-sampler';
import { type BatchLoss, ZoTrainer } from '../../trainer/zo/zo-trainer';
import { oddShapedModel } from '../helpers/float-fixtures';

const BATCH: TokenBatch = { inputIds: new BigInt64Array(1), attentionMask: new BigInt64Array(1), labels: new BigInt64Array(1), batch: 1, seq: 1 };

/** A loss reading every weight's bits; it fails at forward number `failAt` (0-based), if given. */
function weightLoss(params: ParameterSet, failAt = -1): BatchLoss & { forwards: number } {
  const model = {
    forwards: 0,
    async lossSum() {
      if (model.forwards++ === failAt) throw new Error('the forward failed');
      let sum = 0;
      for (const t of params.tensors) for (let i = 0; i < t.data.length; i++) sum += t.data[i] * t.data[i] * (1 + (i % 5));
      return { lossSum: sum, tokens: 1 };
    },
  };
  return model;
}

/** The same loss, read as a pair: first forward, `between`, second forward. */
function paired(inner: BatchLoss): BatchLoss {
  return {
    lossSum: (b) => inner.lossSum(b),
    async lossPair(b, between) {
      const first = await inner.lossSum(b);
      await between();
      return [first, await inner.lossSum(b)] as const;
    },
  };
}

async function train(model: (params: ParameterSet) => BatchLoss): Promise<{ pairs: unknown; digest: string; error: string | null }> {
  const params = new ParameterSet(oddShapedModel(), { kernel: 'js', resident: false });
  const trainer = new ZoTrainer(params, model(params), { federationSeed: 3, k: 64, epsilon: 1e-3, eta: 0.02 });
  try {
    const result = await trainer.train({ steps: 5, seeds: new SeedSampler(64, 9), nextBatch: () => BATCH });
    return { pairs: result.pairs, digest: params.digest(), error: null };
  } catch (e) {
    return { pairs: null, digest: params.digest(), error: (e as Error).message };
  } finally {
    params.dispose();
  }
}

test('a step reading its losses as a pair gives the (seed, g) pairs and weights of awaiting each', async () => {
  const awaited = await train((p) => weightLoss(p));
  const pair = await train((p) => paired(weightLoss(p)));
  assert.ok(Array.isArray(awaited.pairs) && awaited.pairs.length === 5);
  assert.deepEqual(pair.pairs, awaited.pairs);
  assert.equal(pair.digest, awaited.digest);
});

test('a second forward failing after the −2εz pass leaves the weights as the awaited step failing there does', async () => {
  // Forward 7 is step 3's L₋: after its −2εz pass.
  const awaited = await train((p) => weightLoss(p, 7));
  const pair = await train((p) => paired(weightLoss(p, 7)));
  assert.equal(awaited.error, 'the forward failed');
  assert.equal(pair.error, 'the forward failed');
  assert.equal(pair.digest, awaited.digest);
  // And a failing first forward (step 3's L₊, before the pass) likewise.
  assert.equal((await train((p) => paired(weightLoss(p, 6)))).digest, (await train((p) => weightLoss(p, 6))).digest);
});
