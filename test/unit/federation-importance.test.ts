// FedKSeed-Pro importance and the seed probabilities derived from it, against hand-computed values.
// The reference (server.py) starts every seed's history with one 0, so
//   importance_j = Σ|clip(g, ±1000)| / (n_j + 1),   n_j = number of g reported for seed j.
// p is the softmax of the min–max-normalised importance quantized to 2^bits − 1 levels (docs/federation.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IMPORTANCE_CLIP, accumulateImportance, importanceOf } from '../../federation/importance';
import { DEFAULT_PROBABILITY_BITS, probabilitiesFromLevels, quantizeImportance, type SeedGradient } from '../../protocol';

function importanceAfter(k: number, rounds: readonly (readonly SeedGradient[])[]): Float64Array {
  const sum = new Float64Array(k);
  const count = new Float64Array(k);
  for (const pairs of rounds) accumulateImportance(sum, count, pairs);
  return importanceOf(sum, count);
}

const pair = (seed: number, g: number): SeedGradient => ({ seed, g });

test('importance divides by n_j + 1: the reference history starts with one 0', () => {
  assert.equal(IMPORTANCE_CLIP, 1000);
  const imp = importanceAfter(4, [
    // seed 0: never used; seed 1: used once, |g| = 50; seed 2: used three times; seed 3: twice, in two rounds.
    [pair(1, 50), pair(2, 3), pair(2, -6), pair(3, -8)],
    [pair(2, 9), pair(3, 4)],
  ]);
  assert.equal(imp[0], 0, 'an unused seed has the history [0]: importance 0');
  assert.equal(imp[1], 25, 'used once with |g| = 50: (0 + 50) / 2');
  assert.equal(imp[2], 4.5, 'used three times, |g| = 3, 6, 9: (0 + 18) / 4');
  assert.equal(imp[3], 4, 'used twice, |g| = 8, 4: (0 + 12) / 3');
});

test('importance clips |g| at 1000 before averaging', () => {
  const imp = importanceAfter(3, [[pair(0, 2500), pair(0, -1200), pair(1, -1e9), pair(2, 1000), pair(2, -999)]]);
  assert.equal(imp[0], 2000 / 3, '(0 + 1000 + 1000) / 3');
  assert.equal(imp[1], 500, '(0 + 1000) / 2');
  assert.equal(imp[2], 1999 / 3, '(0 + 1000 + 999) / 3: values at or under the clip are kept');
});

test('importance kept as running sums equals the importance of the whole history', () => {
  const history = [pair(0, 1.5), pair(1, -2), pair(0, 3), pair(1, 4000), pair(0, -0.5), pair(2, 7)];
  const oneShot = importanceAfter(4, [history]);
  const perPair = importanceAfter(
    4,
    history.map((p) => [p]),
  );
  assert.deepEqual([...perPair], [...oneShot]);
  assert.deepEqual([...oneShot], [5 / 4, 1002 / 3, 7 / 2, 0]);
});

test('round 1 is uniform: with no history every importance is 0 and every p is 1/K', () => {
  const k = 8;
  const q = quantizeImportance(importanceAfter(k, []), DEFAULT_PROBABILITY_BITS);
  assert.deepEqual([...q.levels], new Array(k).fill(0));
  for (const p of probabilitiesFromLevels(q)) assert.equal(p, 1 / k);
});

test('Pro probabilities: softmax of the importance min–max normalised to 63 levels', () => {
  // importance = [0, 25, 75, 500] (history [0] prepended):
  //   seed 0 unused; seed 1 once |g| = 50; seed 2 three times |g| = 100; seed 3 once |g| = 5000 → clipped to 1000.
  const imp = importanceAfter(4, [[pair(1, -50), pair(2, 100), pair(2, -100), pair(3, 5000)], [pair(2, 100)]]);
  assert.deepEqual([...imp], [0, 25, 75, 500]);
  const q = quantizeImportance(imp, 6);
  assert.equal(q.bits, 6);
  // level_j = round((imp_j − 0) / 500 · 63): 0, round(3.15) = 3, round(9.45) = 9, 63.
  assert.deepEqual([...q.levels], [0, 3, 9, 63]);
  const p = probabilitiesFromLevels(q);
  const e = [0, 3, 9, 63].map((l) => Math.exp(l / 63));
  const total = e.reduce((s, v) => s + v, 0);
  for (let j = 0; j < 4; j++) assert.ok(Math.abs(p[j] - e[j] / total) < 1e-15, `p[${j}] = ${p[j]}, expected ${e[j] / total}`);
  assert.ok(Math.abs(p.reduce((s, v) => s + v, 0) - 1) < 1e-15);
  // The most likely seed is e times more likely than the least, as in the paper.
  assert.ok(Math.abs(p[3] / p[0] - Math.E) < 1e-13);
});

test('Pro probabilities: a seed used once is not ranked as if it had no zero in its history', () => {
  // importance = [0, 30, 20, 40]: seed 1 once |g| = 60 → 30; seed 2 twice |g| = 20, 40 → 20; seed 3 three times |g| = 40, 40, 80 → 40.
  // Dividing by n_j instead would give [0, 60, 30, 53.3] and rank seed 1 above seed 3.
  const imp = importanceAfter(4, [
    [pair(1, 60), pair(2, -20), pair(3, 40)],
    [pair(2, 40), pair(3, -40), pair(3, 80)],
  ]);
  assert.deepEqual([...imp], [0, 30, 20, 40]);
  const q = quantizeImportance(imp, 6);
  // round(30/40·63) = round(47.25) = 47, round(20/40·63) = round(31.5) = 32.
  assert.deepEqual([...q.levels], [0, 47, 32, 63]);
  const p = probabilitiesFromLevels(q);
  assert.ok(p[3] > p[1] && p[1] > p[2] && p[2] > p[0]);
});
