// Round aggregation (ΔA_j = Σ_i w_i Σ g_ij) and its quantization to the integer coefficient grid with
// error feedback (docs/federation.md, "Aggregation" and "Coefficient quantization").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MANTISSA_BITS, aggregateContributions, quantizeWithFeedback, type ClientContribution } from '../../federation/aggregate';
import { COEFFICIENT_SCALE, type SeedGradient } from '../../protocol';
import { createRng, type Rng } from '../../trainer/data/rng';

const pair = (seed: number, g: number): SeedGradient => ({ seed, g });

// Client A: 30 examples, Σg = 6 on seed 0 and 1 on seed 2. Client B: 10 examples, −8 on seed 0, 4 on seed 1.
const a: ClientContribution = { examples: 30, pairs: [pair(0, 4), pair(2, 1), pair(0, 2)] };
const b: ClientContribution = { examples: 10, pairs: [pair(0, -8), pair(1, 4)] };

test('aggregation weights clients by their number of examples, normalised over the contributors', () => {
  // w_A = 30/40 = 0.75, w_B = 0.25.
  assert.deepEqual([...aggregateContributions([a, b], 4, 'examples')], [0.75 * 6 + 0.25 * -8, 0.25 * 4, 0.75 * 1, 0]);
  assert.deepEqual([...aggregateContributions([a, b], 4, 'examples')], [2.5, 1, 0.75, 0]);
  // Only the ratio of the counts matters.
  const scaled = [
    { ...a, examples: 300 },
    { ...b, examples: 100 },
  ];
  assert.deepEqual([...aggregateContributions(scaled, 4, 'examples')], [2.5, 1, 0.75, 0]);
  // The order of the contributions does not matter here (every term is exact).
  assert.deepEqual([...aggregateContributions([b, a], 4, 'examples')], [2.5, 1, 0.75, 0]);
});

test("'equal' weighting gives every contributor 1/n whatever its number of examples", () => {
  // w_A = w_B = 0.5.
  assert.deepEqual([...aggregateContributions([a, b], 4, 'equal')], [-1, 2, 0.5, 0]);
  const c: ClientContribution = { examples: 1, pairs: [pair(3, 3)] };
  const d = aggregateContributions([a, b, c], 4, 'equal');
  const third = 1 / 3;
  assert.deepEqual([...d], [third * 6 + third * -8, third * 4, third * 1, third * 3]);
});

test('examples weighting with equal counts is bit for bit the equal weighting', () => {
  const rng = createRng(11);
  for (let trial = 0; trial < 20; trial++) {
    const n = 1 + rng.nextInt(7);
    const examples = 1 + rng.nextInt(500);
    const contributions = Array.from({ length: n }, () => ({ examples, pairs: randomPairs(rng, 16, 20) }));
    assert.deepEqual([...aggregateContributions(contributions, 16, 'examples')], [...aggregateContributions(contributions, 16, 'equal')]);
  }
});

test('a contributor with no examples carries no weight; no contributors, no change', () => {
  const empty: ClientContribution = { examples: 0, pairs: [pair(1, 1000)] };
  assert.deepEqual([...aggregateContributions([a, b, empty], 4, 'examples')], [2.5, 1, 0.75, 0]);
  assert.deepEqual([...aggregateContributions([], 4, 'examples')], [0, 0, 0, 0]);
  assert.deepEqual([...aggregateContributions([], 4, 'equal')], [0, 0, 0, 0]);
  // All counts zero: no division by zero, every contributor weighs the same.
  const d = aggregateContributions(
    [
      { ...a, examples: 0 },
      { ...b, examples: 0 },
    ],
    4,
    'examples',
  );
  assert.deepEqual([...d], [-1, 2, 0.5, 0]);
});

function randomPairs(rng: Rng, k: number, n: number): SeedGradient[] {
  return Array.from({ length: n }, () => pair(rng.nextInt(k), Math.fround((rng.nextFloat() * 2 - 1) * 10 ** (rng.nextFloat() * 6 - 3))));
}

// ---- error feedback: exact accounting with BigInt (every finite double is an integer multiple of 2^-1074).

const EXACT_SHIFT = 1100;

/** x · 2^1100 as an exact integer. */
function exact(x: number): bigint {
  assert.ok(Number.isFinite(x));
  if (x === 0) return 0n;
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  let mantissa = bits & ((1n << 52n) - 1n);
  let e = -1074;
  if (biased !== 0) {
    mantissa |= 1n << 52n;
    e = biased - 1075;
  }
  const v = mantissa << BigInt(e + EXACT_SHIFT);
  return bits >> 63n ? -v : v;
}

/** Checks the grid invariants of one quantized change and returns x = ΔA·2^16 + residual as the quantizer computes it. */
function checkGrid(deltaA: Float64Array, residual: Float64Array, q: ReturnType<typeof quantizeWithFeedback>): Float64Array {
  const x = deltaA.map((d, j) => d * COEFFICIENT_SCALE + residual[j]);
  const step = 2 ** q.exponent;
  const maxMantissa = 2 ** (DEFAULT_MANTISSA_BITS - 1) - 1;
  const maxAbs = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assert.ok(maxAbs / step <= maxMantissa, 'every x fits the mantissa at this step');
  if (q.exponent > 0) assert.ok(maxAbs / (step / 2) > maxMantissa, 'the step is the smallest that fits');
  for (let j = 0; j < x.length; j++) {
    assert.ok(Number.isInteger(q.change[j] / step), `ΔC[${j}] = ${q.change[j]} is a multiple of 2^${q.exponent}`);
    assert.ok(Math.abs(q.change[j] / step) <= maxMantissa);
    assert.ok(Math.abs(q.residual[j]) <= step / 2, `residual ${q.residual[j]} within half a step`);
    // The split of x into commit and residual loses nothing.
    assert.equal(exact(q.change[j]) + exact(q.residual[j]), exact(x[j]), `round-trip of x[${j}]`);
  }
  return x;
}

test('error feedback conserves the total exactly: Σ committed changes + residual = Σ ΔA·2^16 (dyadic inputs)', () => {
  // g on a 2^-20 grid and bounded, so that no double operation rounds: the identity must hold bit for bit.
  const rng = createRng(0x5eed);
  const k = 24;
  let residual = new Float64Array(k);
  const total = new Array<bigint>(k).fill(0n);
  const committed = new Array<bigint>(k).fill(0n);
  for (let round = 0; round < 1500; round++) {
    const deltaA = new Float64Array(k);
    const scale = 2 ** (rng.nextInt(24) - 20); // rounds of very different sizes, so the step changes
    for (let j = 0; j < k; j++) {
      if (rng.nextFloat() < 0.4) continue;
      deltaA[j] = ((rng.nextInt(1 << 20) - (1 << 19)) * scale) / 2 ** 4;
    }
    const q = quantizeWithFeedback(deltaA, residual);
    checkGrid(deltaA, residual, q);
    for (let j = 0; j < k; j++) {
      total[j] += exact(deltaA[j] * COEFFICIENT_SCALE);
      committed[j] += exact(q.change[j]);
      assert.equal(committed[j] + exact(q.residual[j]), total[j], `round ${round}, seed ${j}`);
    }
    residual = new Float64Array(q.residual);
  }
});

test('error feedback with arbitrary doubles loses only the rounding of ΔA·2^16 + residual, far below one C unit', () => {
  const rng = createRng(20240601);
  const k = 32;
  let residual = new Float64Array(k);
  const total = new Array<bigint>(k).fill(0n);
  const committed = new Array<bigint>(k).fill(0n);
  const carryRounding = new Array<bigint>(k).fill(0n);
  for (let round = 0; round < 1500; round++) {
    const contributions = Array.from({ length: 1 + rng.nextInt(5) }, () => ({ examples: 1 + rng.nextInt(300), pairs: randomPairs(rng, k, 40) }));
    const deltaA = aggregateContributions(contributions, k, 'examples');
    const q = quantizeWithFeedback(deltaA, residual);
    const x = checkGrid(deltaA, residual, q);
    for (let j = 0; j < k; j++) {
      total[j] += exact(deltaA[j] * COEFFICIENT_SCALE);
      committed[j] += exact(q.change[j]);
      // The one rounded operation: x = fl(ΔA·2^16 + residual).
      carryRounding[j] += exact(x[j]) - exact(deltaA[j] * COEFFICIENT_SCALE) - exact(residual[j]);
      assert.equal(committed[j] + exact(q.residual[j]), total[j] + carryRounding[j], `round ${round}, seed ${j}`);
    }
    residual = new Float64Array(q.residual);
  }
  // What was lost over all rounds, in C units (2^-16 g-units).
  const lost = Math.max(...carryRounding.map((v) => Math.abs(Number(v >> BigInt(EXACT_SHIFT - 100)) / 2 ** 100)));
  assert.ok(lost < 1e-6, `lost ${lost} C units`);
});
