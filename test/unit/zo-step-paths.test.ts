// Every way the engine can run a ZO step (hashing every pass or storing z, JS or WASM, weights resident
// or not) trains to the same bits: the store only changes whether z is hashed or read back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TokenBatch } from '../../trainer/data/batches';
import { ParameterSet, type ParameterSetOptions, type TensorInit } from '../../trainer/zo/parameters';
import { SeedSampler } from '../../trainer/zo/seed-sampler';
import { type BatchLoss, ZoTrainer } from '../../trainer/zo/zo-trainer';

/** Odd shapes (tails of every length), given out of name order. */
export function stepModel(scale = 1): TensorInit[] {
  const shapes: [string, number[]][] = [
    ['h.1.mlp.weight', [13 * scale, 7]],
    ['wte', [50 * scale, 9]],
    ['h.0.ln.bias', [9]],
    ['h.0.attn.weight', [9 * scale, 27]],
    ['Z_last', [3]],
    ['h.1.ln.bias', [1]],
  ];
  let h = 777;
  return shapes.map(([name, dims]) => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) {
      h = (Math.imul(h, 1103515245) + 12345) >>> 0;
      data[i] = (h / 2 ** 32 - 0.5) * 0.2;
    }
    return { name, dims, data };
  });
}

const BATCH: TokenBatch = { inputIds: new BigInt64Array(1), attentionMask: new BigInt64Array(1), labels: new BigInt64Array(1), batch: 1, seq: 1 };

/**
 * A loss that depends on every weight's bits (read through the set at each call, as a session does), so
 * any difference in any pass changes g and the following steps. Step 3's L₋ is NaN: a skipped step.
 */
function weightLoss(params: ParameterSet): BatchLoss {
  let calls = 0;
  return {
    async lossSum() {
      calls++;
      if (calls === 8) return { lossSum: Number.NaN, tokens: 1 };
      let sum = 0;
      for (const t of params.tensors) for (let i = 0; i < t.data.length; i++) sum += t.data[i] * t.data[i] * (1 + (i % 7));
      return { lossSum: sum, tokens: 1 };
    },
  };
}

export async function trainDigest(params: ParameterSet, steps = 12): Promise<{ digest: string; g: number[] }> {
  const trainer = new ZoTrainer(params, weightLoss(params), { federationSeed: 99, k: 64, eps: 1e-3, eta: 0.05 });
  const result = await trainer.train({ steps, seeds: new SeedSampler(64, 5), nextBatch: () => BATCH });
  assert.equal(result.stepsRun, steps);
  assert.equal(result.skipped, 1);
  return { digest: params.digest(), g: result.pairs.map((p) => p.g) };
}

test('training with the z store, without it, in JS and in WASM gives the same bits', async () => {
  const configs: ParameterSetOptions[] = [
    { kernel: 'js' },
    { kernel: 'js', zStore: true },
    { kernel: 'wasm-simd', zStore: false },
    { kernel: 'wasm-simd' },
    { kernel: 'wasm-simd', resident: false },
  ];
  const results = [];
  for (const options of configs) {
    const params = new ParameterSet(stepModel(), options);
    results.push({ options, ...(await trainDigest(params)) });
  }
  const reference = results[0];
  assert.notEqual(reference.digest, new ParameterSet(stepModel()).digest(), 'training changed the weights');
  for (const r of results.slice(1)) {
    assert.deepEqual(r.g, reference.g, JSON.stringify(r.options));
    assert.equal(r.digest, reference.digest, JSON.stringify(r.options));
  }
});

test('a set trained with the store keeps matching after resets and restores between runs', async () => {
  const stored = new ParameterSet(stepModel(), { kernel: 'wasm-simd' });
  const hashed = new ParameterSet(stepModel(), { kernel: 'wasm-simd', zStore: false });
  for (const params of [stored, hashed]) {
    await trainDigest(params, 10);
    const snap = params.snapshot();
    params.resetToBase();
    params.restore(snap);
    await trainDigest(params, 10);
  }
  assert.equal(stored.digest(), hashed.digest());
});
