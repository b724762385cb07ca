// The perturbation's shape (trainer/zo/shape.ts): per-tensor power-of-two multipliers derived from w0. A
// shaped pass must be the isotropic pass with each tensor's step scaled by its multiplier, bit for bit, in
// every engine path (JS/WASM, z store or not, resident or streamed, one thread or split over a worker), and
// the shaped replica must be w0 + m ⊙ (−η·2⁻²⁸·S) exactly, whichever way S is kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TokenBatch } from '../../trainer/data/batches';
import { createKernels } from '../../trainer/zo/kernels-select';
import { ParameterSet, type ParameterSetOptions, type TensorInit } from '../../trainer/zo/parameters';
import { nearestPowerOfTwoExponent, SHAPE_EXPONENT_LIMIT, shapeMultipliers, sumSquares } from '../../trainer/zo/shape';
import { seedKey, z } from '../../trainer/zo/generator';
import { SeedSampler } from '../../trainer/zo/seed-sampler';
import { type BatchLoss, ZoTrainer } from '../../trainer/zo/zo-trainer';
import { oddShapedModel } from '../helpers/float-fixtures';

/** oddShapedModel with tensors of very different scales, so the shape gives each its own multiplier. */
function scaledModel(scale = 1): TensorInit[] {
  const factors = [1, 0.25, 8, 1, 3, 0.01];
  return oddShapedModel(scale, 777).map((t, i) => ({ ...t, data: t.data.map((x) => x * factors[i]) }));
}

test('the multiplier is the power of two nearest to a tensor rms over the model rms (log scale), clamped', () => {
  assert.equal(nearestPowerOfTwoExponent(1), 0);
  assert.equal(nearestPowerOfTwoExponent(4), 1);
  assert.equal(nearestPowerOfTwoExponent(0.25), -1);
  // ratio² just below and at 2^(2e+1): the boundary between e and e+1 lies at ratio = 2^(e+½).
  assert.equal(nearestPowerOfTwoExponent(2 * 0.9999999), 0);
  assert.equal(nearestPowerOfTwoExponent(2), 1);
  assert.equal(nearestPowerOfTwoExponent(0), -SHAPE_EXPONENT_LIMIT);
  assert.equal(nearestPowerOfTwoExponent(1e30), SHAPE_EXPONENT_LIMIT);
  // Two tensors of 4 values: rms 1 and rms 4; the model's mean square is (4·1 + 4·16)/8 = 8.5.
  const m = shapeMultipliers('tensor-rms', [
    { size: 4, sumSquares: 4 },
    { size: 4, sumSquares: 64 },
  ]);
  assert.deepEqual([...m], [2 ** nearestPowerOfTwoExponent(1 / 8.5), 2 ** nearestPowerOfTwoExponent(16 / 8.5)]);
  assert.deepEqual([...m], [0.25, 1]);
  assert.deepEqual([...shapeMultipliers('isotropic', [{ size: 4, sumSquares: 64 }])], [1]);
  assert.equal(sumSquares(Float32Array.of(1, -2, 3)), 14);
});

/** Tensors whose sizes are multiples of 8 (no index gaps): neighbours of one multiplier form one segment. */
function gaplessModel(): TensorInit[] {
  const tensor = (name: string, size: number, scale: number): TensorInit => ({
    name,
    dims: [size],
    data: Float32Array.from({ length: size }, (_, i) => scale * Math.sin(i + size)),
  });
  return [tensor('a', 64, 1), tensor('b', 32, 1.1), tensor('c', 16, 9), tensor('d', 8, 1), tensor('e', 24, 0.1)];
}

for (const [what, model] of [
  ['tensors with gaps between them', scaledModel],
  ['gapless tensors, neighbours merged', gaplessModel],
] as const)
  test(`a shaped pass is the isotropic pass with each tensor scaled by its multiplier, bit for bit (${what})`, () => {
    const shaped = new ParameterSet(model(), { kernel: 'wasm-simd' });
    shaped.setShape('tensor-rms');
    const m = shaped.shapeMultipliers();
    assert.ok(new Set(m.values()).size >= 3, `distinct multipliers: ${[...m.values()].join(', ')}`);
    const key = seedKey(99, 7);
    shaped.perturb(key, 0.003);
    shaped.perturb2(key, -0.002, seedKey(99, 8), 0.001);
    const kernels = createKernels('js');
    const reference = new ParameterSet(model(), { kernel: 'js' });
    for (const t of reference.tensors) {
      const w = t.data.slice();
      kernels.perturb(w, t.offset, key, 0.003 * (m.get(t.name) as number));
      kernels.perturb2(w, t.offset, key, -0.002 * (m.get(t.name) as number), seedKey(99, 8), 0.001 * (m.get(t.name) as number));
      const got = shaped.tensors.find((x) => x.name === t.name)?.data as Float32Array;
      assert.deepEqual(got, w, t.name);
    }
  });

const BATCH: TokenBatch = { inputIds: new BigInt64Array(1), attentionMask: new BigInt64Array(1), labels: new BigInt64Array(1), batch: 1, seq: 1 };

function weightLoss(params: ParameterSet): BatchLoss {
  return {
    async lossSum() {
      let sum = 0;
      for (const t of params.tensors) for (let i = 0; i < t.data.length; i++) sum += t.data[i] * t.data[i] * (1 + (i % 7));
      return { lossSum: sum, tokens: 1 };
    },
  };
}

async function shapedTraining(options: ParameterSetOptions, scale = 1): Promise<{ digest: string; g: number[]; replica: string }> {
  const params = new ParameterSet(scaledModel(scale), options);
  try {
    params.setShape('tensor-rms');
    const trainer = new ZoTrainer(params, weightLoss(params), { federationSeed: 99, k: 64, epsilon: 1e-3, eta: 0.05 });
    const result = await trainer.train({ steps: 10, seeds: new SeedSampler(64, 5), nextBatch: () => BATCH });
    const digest = params.digest();
    params.applyCoefficientDelta(99, [1, 5, 9], [65536, -3 * 65536, 12345], 0.01);
    return { digest, g: result.pairs.map((p) => p.g), replica: params.digest() };
  } finally {
    params.dispose();
  }
}

test('shaped training gives the same bits in every engine path', async () => {
  const reference = await shapedTraining({ kernel: 'js' });
  const isotropic = new ParameterSet(scaledModel(), { kernel: 'js' });
  const trainer = new ZoTrainer(isotropic, weightLoss(isotropic), { federationSeed: 99, k: 64, epsilon: 1e-3, eta: 0.05 });
  const plain = await trainer.train({ steps: 10, seeds: new SeedSampler(64, 5), nextBatch: () => BATCH });
  assert.notDeepEqual(
    reference.g,
    plain.pairs.map((p) => p.g),
    'the shape changes what is trained',
  );
  for (const options of [
    { kernel: 'js', zStore: true },
    { kernel: 'wasm-simd', zStore: false },
    { kernel: 'wasm-simd' },
    { kernel: 'wasm-simd', resident: false },
    { kernel: 'wasm-simd', sums: 'coefficients' },
    { kernel: 'wasm-simd', sums: 'file' },
  ] as ParameterSetOptions[]) {
    assert.deepEqual(await shapedTraining(options), reference, JSON.stringify(options));
  }
});

test('shaped passes split over a worker give the same bits as one thread', async () => {
  const single = await shapedTraining({ parallelPasses: 'off' }, 300);
  const params = new ParameterSet(scaledModel(300), { parallelPasses: 'on' });
  params.bindTo({ bindWeights: () => undefined });
  try {
    assert.equal(params.split, true);
    params.setShape('tensor-rms');
    const trainer = new ZoTrainer(params, weightLoss(params), { federationSeed: 99, k: 64, epsilon: 1e-3, eta: 0.05 });
    const result = await trainer.train({ steps: 10, seeds: new SeedSampler(64, 5), nextBatch: () => BATCH });
    assert.deepEqual(
      result.pairs.map((p) => p.g),
      single.g,
    );
    assert.equal(params.digest(), single.digest);
    params.applyCoefficientDelta(99, [1, 5, 9], [65536, -3 * 65536, 12345], 0.01);
    assert.equal(params.digest(), single.replica);
  } finally {
    params.dispose();
  }
});

test('the shaped replica is w0 + m ⊙ (−η·2⁻²⁸·S) exactly', () => {
  const params = new ParameterSet(scaledModel(), { kernel: 'wasm-simd' });
  params.setShape('tensor-rms');
  const seeds = [1, 5, 9];
  const deltas = [65536, -3 * 65536, 12345];
  const eta = 0.01;
  params.applyCoefficientDelta(99, seeds, deltas, eta);
  const m = params.shapeMultipliers();
  const base = new ParameterSet(scaledModel(), { kernel: 'js' });
  for (const t of base.tensors) {
    const got = params.tensors.find((x) => x.name === t.name)?.data as Float32Array;
    for (let i = 0; i < t.size; i++) {
      let S = 0;
      seeds.forEach((j, n) => (S += deltas[n] * z(99, j, t.offset + i) * 4096));
      const expected = Math.fround(t.data[i] + -eta * 2 ** -28 * (m.get(t.name) as number) * S);
      assert.equal(got[i], expected, `${t.name}[${i}]`);
    }
  }
  // Back to isotropic: the same coefficients give the unshaped replica.
  const plain = new ParameterSet(scaledModel(), { kernel: 'wasm-simd' });
  plain.applyCoefficientDelta(99, seeds, deltas, eta);
  params.setShape('isotropic');
  assert.equal(params.digest(), plain.digest());
});
