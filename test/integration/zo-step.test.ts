// The ZO step against the truth, on a model built by a different route than the GPT-2 builder (a
// bigram table written with onnx-proto directly, whose gradient is known in closed form), run through
// the real training graph and a real onnxruntime session.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { nextTokenLabels, parseModel, rewriteForTraining, type LoadedModel } from '../../trainer/model';
import { ModelSession } from '../../trainer/device/session';
import { bigramLossAndGradient, buildBigramModel, BIGRAM_BIAS, BIGRAM_TABLE } from '../helpers/bigram-model';
import type { SeedGradient } from '../../protocol';
import { ZoTrainer } from '../../trainer/zo/zo-trainer';
import { SeedSampler } from '../../trainer/zo/seed-sampler';
import { ParameterSet } from '../../trainer/zo/parameters';
import { ZQ_MAX_ABS } from '../../protocol';
import { z } from '../../trainer/zo/generator';
import { quantizeCoefficient } from '../../trainer/zo/coefficients';
import type { TokenBatch } from '../../trainer/data/batches';

const V = 12;
const F = 0xc0ffee;

function fixedBatch(): TokenBatch {
  const batch = 2;
  const seq = 9;
  const inputIds = BigInt64Array.from({ length: batch * seq }, (_, i) => BigInt((i * 7 + 3) % V));
  const attentionMask = new BigInt64Array(batch * seq).fill(1n);
  attentionMask[batch * seq - 1] = 0n; // one padded position: the mask must be honoured
  return { inputIds, attentionMask, labels: nextTokenLabels(inputIds, attentionMask, batch, seq), batch, seq };
}

describe('ZO step on a model with a known gradient', () => {
  let model: LoadedModel;
  let session: ModelSession;
  const built = buildBigramModel({ vocab: V, seed: 5, scale: 0.5 });
  const batch = fixedBatch();

  before(async () => {
    model = parseModel(built.bytes, 'bigram.onnx');
    session = await ModelSession.create(rewriteForTraining(model), { intraOpNumThreads: 1 });
  });
  after(async () => session.release());

  function freshParams(): ParameterSet {
    const params = new ParameterSet(model.weights.map((w) => ({ ...w, data: w.data.slice() })));
    session.bindWeights(params.weights);
    return params;
  }

  /** ĝ = mean of g·z over the pairs, laid out like the closed-form gradient (table then bias). */
  function estimate(params: ParameterSet, pairs: readonly SeedGradient[]): Float64Array {
    const table = params.tensors.find((t) => t.name === BIGRAM_TABLE);
    const bias = params.tensors.find((t) => t.name === BIGRAM_BIAS);
    assert.ok(table && bias);
    const out = new Float64Array(V * V + V);
    for (const { seed, g } of pairs) {
      for (let i = 0; i < V * V; i++) out[i] += g * z(F, seed, table.offset + i);
      for (let i = 0; i < V; i++) out[V * V + i] += g * z(F, seed, bias.offset + i);
    }
    return out.map((x) => x / pairs.length);
  }

  it('averages to the true gradient (direction and scale), and leaves the weights where they were at η = 0', async () => {
    const params = freshParams();
    const digestBefore = params.digest();
    const truth = bigramLossAndGradient(built.table, built.bias, V, batch);
    const exact = Float64Array.from([...truth.table, ...truth.bias]);
    const n = 3000;
    const trainer = new ZoTrainer(params, session, { federationSeed: F, k: 65536, epsilon: 1e-3, eta: 0 });
    const result = await trainer.train({ steps: n, seeds: new SeedSampler(65536, 11), nextBatch: () => batch });
    assert.equal(result.pairs.length, n);
    assert.equal(result.skipped, 0);

    const est = estimate(params, result.pairs);
    const dot = est.reduce((s, x, i) => s + x * exact[i], 0);
    const norm2 = exact.reduce((s, x) => s + x * x, 0);
    const estNorm = Math.sqrt(est.reduce((s, x) => s + x * x, 0));
    const cosine = dot / (estNorm * Math.sqrt(norm2));
    // With d = 156 parameters and n = 3000 samples, E[cos] ≈ 1/sqrt(1 + d/n) ≈ 0.975.
    assert.ok(cosine > 0.9, `cosine(ĝ, ∇L) = ${cosine}`);
    // Unbiased: the projection of ĝ on ∇L is ‖∇L‖² in expectation; per sample its relative sd is
    // about sqrt(2), so over n samples sqrt(2/n) ≈ 0.026: ±0.15 is ~6 sd.
    const ratio = dot / norm2;
    assert.ok(Math.abs(ratio - 1) < 0.15, `projection ratio ${ratio}`);

    // Each step restores +εz −2εz +εz: back to the start up to float32 rounding, never drifting away.
    const w = params.weights.get(BIGRAM_TABLE) as Float32Array;
    const maxDiff = w.reduce((m, x, i) => Math.max(m, Math.abs(x - built.table[i])), 0);
    assert.ok(maxDiff < 1e-4, `weights drifted by ${maxDiff} at η = 0`);
    assert.notEqual(params.digest(), digestBefore, 'rounding makes the path visible: the test really ran steps');
  });

  it('descends: training with η > 0 lowers the loss on the batch', async () => {
    const params = freshParams();
    const before = await session.lossSum(batch);
    const trainer = new ZoTrainer(params, session, { federationSeed: F, k: 4096, epsilon: 1e-3, eta: 2e-2 });
    await trainer.train({ steps: 400, seeds: new SeedSampler(4096, 12), nextBatch: () => batch });
    const after = await session.lossSum(batch);
    assert.ok(after.lossSum / after.tokens < (before.lossSum / before.tokens) * 0.95, `${before.lossSum / before.tokens} → ${after.lossSum / after.tokens}`);
  });

  it('skips a step whose loss is not finite and reports no pair for it', async () => {
    const params = freshParams();
    let calls = 0;
    const flaky = { lossSum: async (b: TokenBatch) => (++calls === 3 ? { lossSum: Number.NaN, tokens: 1 } : session.lossSum(b)) };
    const trainer = new ZoTrainer(params, flaky, { federationSeed: F, k: 64, epsilon: 1e-3, eta: 1e-2 });
    const events: boolean[] = [];
    const r = await trainer.train({ steps: 4, seeds: new SeedSampler(64, 1), nextBatch: () => batch, onStep: (e) => events.push(e.skipped) });
    assert.deepEqual(events, [false, true, false, false]);
    assert.equal(r.pairs.length, 3);
    assert.equal(r.skipped, 1);
  });

  it('rebuilding base + K coefficients equals step-by-step training up to float32 rounding', async () => {
    const stepwise = freshParams();
    const eta = 1e-2;
    const steps = 300;
    const trainer = new ZoTrainer(stepwise, session, { federationSeed: F, k: 256, epsilon: 1e-3, eta });
    const r = await trainer.train({ steps, seeds: new SeedSampler(256, 13), nextBatch: () => batch });
    const sums = new Map<number, number>();
    for (const { seed, g } of r.pairs) sums.set(seed, (sums.get(seed) ?? 0) + g);

    const rebuilt = freshParams();
    const seeds = [...sums.keys()];
    rebuilt.applyCoefficientDelta(
      F,
      seeds,
      seeds.map((j) => quantizeCoefficient(sums.get(j) as number)),
      eta,
    );

    const a = stepwise.weights.get(BIGRAM_TABLE) as Float32Array;
    const b = rebuilt.weights.get(BIGRAM_TABLE) as Float32Array;
    let maxDiff = 0;
    let maxMove = 0;
    let maxAbs = 0;
    for (let i = 0; i < a.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
      maxMove = Math.max(maxMove, Math.abs(b[i] - built.table[i]));
      maxAbs = Math.max(maxAbs, Math.abs(a[i]));
    }
    // Bound: two float32 roundings per step on the float path (ulp ≤ 2^-23·max|w|) plus the
    // quantization of each seed's coefficient to 2^-16 (≤ 2^-17 per seed, scaled by η·max|z|).
    const ulpBound = 2 * steps * maxAbs * 2 ** -23;
    const quantBound = sums.size * 2 ** -17 * eta * (ZQ_MAX_ABS / 4096);
    assert.ok(maxMove > 100 * (ulpBound + quantBound), `training moved the weights by only ${maxMove}`);
    assert.ok(maxDiff <= ulpBound + quantBound, `rebuild differs by ${maxDiff} (bound ${ulpBound + quantBound})`);
  });
});
