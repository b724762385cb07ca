// The seed sampler follows the round's probabilities p (FedKSeed-Pro): a chi-square goodness-of-fit
// test on many draws from a fixed stream seed. The draws are deterministic, so the test never flakes;
// the threshold (p-value 1e-6) is what keeps it meaningful if the generator or the seed ever change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeedSampler } from '../../trainer/zo/seed-sampler';
import { probabilitiesFromLevels } from '../../protocol';

/** ln Γ(a), Lanczos (g = 7, n = 9): about 15 significant digits for a > 0. */
function lnGamma(a: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012,
    9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (a < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * a)) - lnGamma(1 - a);
  const x = a - 1;
  let s = c[0];
  for (let i = 1; i < 9; i++) s += c[i] / (x + i);
  const t = x + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(s);
}

/** Regularised upper incomplete gamma Q(a, x) (series below a + 1, Lentz continued fraction above). */
function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const front = Math.exp(-x + a * Math.log(x) - lnGamma(a));
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 10_000 && Math.abs(term) > Math.abs(sum) * 1e-16; n++) {
      term *= x / (a + n);
      sum += term;
    }
    return 1 - front * sum;
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10_000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return front * h;
}

/** P(χ²_df ≥ statistic). */
function chiSquareSurvival(statistic: number, df: number): number {
  return gammaQ(df / 2, statistic / 2);
}

const ALPHA = 1e-6;

function chiSquare(counts: ArrayLike<number>, p: ArrayLike<number>, n: number): { statistic: number; pValue: number } {
  let total = 0;
  for (let j = 0; j < p.length; j++) total += p[j];
  let statistic = 0;
  for (let j = 0; j < p.length; j++) {
    const expected = (n * p[j]) / total;
    statistic += (counts[j] - expected) ** 2 / expected;
  }
  return { statistic, pValue: chiSquareSurvival(statistic, p.length - 1) };
}

function draw(sampler: SeedSampler, n: number): Uint32Array {
  const counts = new Uint32Array(sampler.k);
  for (let i = 0; i < n; i++) counts[sampler.next()]++;
  return counts;
}

test('the chi-square survival function matches tabulated critical values', () => {
  // Critical values of χ² at upper-tail probability 1e-6 (scipy.stats.chi2.isf(1e-6, df)).
  const table: [number, number][] = [
    [1, 23.928126976934827],
    [7, 40.521831234179864],
    [15, 56.49344249977338],
    [31, 83.64251584700447],
  ];
  for (const [df, critical] of table) {
    const q = chiSquareSurvival(critical, df);
    assert.ok(Math.abs(q - ALPHA) < 1e-9, `df ${df}: Q(${critical}) = ${q}`);
  }
  assert.ok(Math.abs(chiSquareSurvival(30, 15) - 0.011921495938159686) < 1e-12);
  assert.ok(Math.abs(chiSquareSurvival(2, 2) - Math.exp(-1)) < 1e-14);
});

test('seeds are drawn from a strongly non-uniform p (p_j ∝ j + 1): chi-square, p-value > 1e-6', () => {
  const k = 16;
  const p = Float64Array.from({ length: k }, (_, j) => (j + 1) / 136);
  const n = 200_000;
  const counts = draw(new SeedSampler(k, 0x5eed1234, p), n);
  const { statistic, pValue } = chiSquare(counts, p, n);
  assert.ok(pValue > ALPHA, `χ² = ${statistic.toFixed(2)} on ${k - 1} df, p-value ${pValue}`);
});

test('seeds are drawn from a Pro p (softmax of 6-bit levels, ratio ≤ e): chi-square, p-value > 1e-6', () => {
  const k = 32;
  const levels = Uint8Array.from({ length: k }, (_, j) => (j * 37) % 64);
  const p = probabilitiesFromLevels({ bits: 6, levels });
  const n = 400_000;
  const counts = draw(new SeedSampler(k, 20240601, p), n);
  const { statistic, pValue } = chiSquare(counts, p, n);
  assert.ok(pValue > ALPHA, `χ² = ${statistic.toFixed(2)} on ${k - 1} df, p-value ${pValue}`);
});

test('the chi-square test rejects samplers that do not follow p', () => {
  const k = 32;
  const levels = Uint8Array.from({ length: k }, (_, j) => (j * 37) % 64);
  const p = probabilitiesFromLevels({ bits: 6, levels });
  const n = 400_000;
  // Uniform draws (FedKSeed's sampler) against Pro's p.
  const uniform = chiSquare(draw(new SeedSampler(k, 20240601), n), p, n);
  assert.ok(uniform.pValue < ALPHA, `uniform draws: p-value ${uniform.pValue}`);
  // Draws from p shifted by one seed (an off-by-one in the cumulative search).
  const shifted = Float64Array.from({ length: k }, (_, j) => p[(j + 1) % k]);
  const offByOne = chiSquare(draw(new SeedSampler(k, 20240601, shifted), n), p, n);
  assert.ok(offByOne.pValue < ALPHA, `shifted draws: p-value ${offByOne.pValue}`);
});

test('seeds with probability 0 are never drawn; the same stream seed gives the same draws', () => {
  const p = [0, 0.5, 0, 0.25, 0.25, 0];
  const counts = draw(new SeedSampler(6, 99, p), 50_000);
  assert.equal(counts[0] + counts[2] + counts[5], 0);
  const a = new SeedSampler(6, 7, p);
  const b = new SeedSampler(6, 7, p);
  for (let i = 0; i < 1000; i++) assert.equal(a.next(), b.next());
});
