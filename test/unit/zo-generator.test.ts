import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ZQ, ZQ_SHA256, ZQ_SIZE, fmix32, normalQuantile, seedKey, tableDigest, z, zIndex } from '../../trainer/zo/generator';
import { ZQ_MAX_ABS } from '../../protocol';
import { JsKernels } from '../../trainer/zo/kernels-js';

test('the Zq table matches its pinned SHA-256 and is a symmetric, sorted quantile table', () => {
  assert.equal(tableDigest(ZQ), ZQ_SHA256);
  assert.equal(ZQ.length, ZQ_SIZE);
  for (let k = 0; k < ZQ_SIZE; k++) assert.equal(ZQ[k] + ZQ[ZQ_SIZE - 1 - k], 0, `asymmetric at ${k}`);
  for (let k = 1; k < ZQ_SIZE; k++) assert.ok(ZQ[k] >= ZQ[k - 1], `not sorted at ${k}`);
  let s2 = 0;
  for (const v of ZQ) s2 += (v / 4096) ** 2;
  assert.ok(Math.abs(s2 / ZQ_SIZE - 1) < 3e-4, `table variance ${s2 / ZQ_SIZE}`);
});

test("the protocol's pinned max|Zq| is the table's largest magnitude", () => {
  // The server checks the replicas' exact range with this constant and holds no table of its own.
  let max = 0;
  for (const v of ZQ) max = Math.max(max, Math.abs(v));
  assert.equal(ZQ_MAX_ABS, max);
  assert.ok(ZQ.includes(ZQ_MAX_ABS) && ZQ.includes(-ZQ_MAX_ABS));
});

test('a changed table no longer matches the pinned digest', () => {
  const altered = ZQ.slice();
  altered[12345] += 1;
  assert.notEqual(tableDigest(altered), ZQ_SHA256);
});

test('normalQuantile reproduces known quantiles of the standard normal', () => {
  const known: [number, number][] = [
    [0.5, 0],
    [0.975, 1.959963984540054],
    [0.841344746068543, 1.0],
    [1e-10, -6.361340902404056],
    [0.999, 3.090232306167813],
  ];
  for (const [p, x] of known) assert.ok(Math.abs(normalQuantile(p) - x) < 1e-12, `Φ⁻¹(${p}) = ${normalQuantile(p)}`);
  assert.throws(() => normalQuantile(0), RangeError);
  assert.throws(() => normalQuantile(1), RangeError);
});

test('fmix32 is the murmur3 finaliser on unsigned words', () => {
  assert.equal(fmix32(0), 0);
  // fmix32 is a bijection: distinct inputs give distinct outputs on a sample.
  const seen = new Set<number>();
  for (let x = 0; x < 100_000; x++) seen.add(fmix32(x * 2654435761));
  assert.equal(seen.size, 100_000);
  for (let x = 1; x < 1000; x++) {
    const h = fmix32(x);
    assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff);
  }
});

test('seedKey and z are deterministic, unsigned and depend on F, j and i', () => {
  assert.equal(seedKey(1, 2), seedKey(1, 2));
  assert.notEqual(seedKey(1, 2), seedKey(1, 3));
  assert.notEqual(seedKey(1, 2), seedKey(2, 2));
  assert.ok(seedKey(0xffffffff, 4095) >= 0);
  assert.equal(z(5, 6, 7), ZQ[zIndex(seedKey(5, 6), 7)] / 4096);
});

/** n values of z(F, j, ·) from index `from`, drawn through the JS kernel (w = 0 + 1·z is exact). */
function draw(F: number, j: number, n: number, from = 0): Float64Array {
  const w = new Float32Array(n);
  new JsKernels().perturb(w, from, seedKey(F, j), 1);
  return Float64Array.from(w);
}

function moments(x: Float64Array): { mean: number; variance: number; kurtosis: number } {
  let mean = 0;
  for (const v of x) mean += v;
  mean /= x.length;
  let m2 = 0;
  let m4 = 0;
  for (const v of x) {
    const d = (v - mean) ** 2;
    m2 += d;
    m4 += d * d;
  }
  m2 /= x.length;
  m4 /= x.length;
  return { mean, variance: m2, kurtosis: m4 / (m2 * m2) };
}

function correlation(a: Float64Array, b: Float64Array): number {
  const ma = moments(a).mean;
  const mb = moments(b).mean;
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (a[i] - ma) * (b[i] - mb);
    aa += (a[i] - ma) ** 2;
    bb += (b[i] - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

// Tolerances are 6 standard errors of the statistic for n normal draws: a false failure is a ~1e-9 event.
const N = 1 << 20;
const SIGMAS = 6;

test('z has mean 0, variance 1 and kurtosis 3', () => {
  const { mean, variance, kurtosis } = moments(draw(0x1234, 17, N, 1_000_000));
  assert.ok(Math.abs(mean) < SIGMAS / Math.sqrt(N), `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < SIGMAS * Math.sqrt(2 / N), `variance ${variance}`);
  assert.ok(Math.abs(kurtosis - 3) < SIGMAS * Math.sqrt(24 / N), `kurtosis ${kurtosis}`);
});

test('the table index is uniform (chi-square over the top 8 bits)', () => {
  const counts = new Float64Array(256);
  const key = seedKey(99, 3);
  for (let i = 0; i < N; i++) counts[zIndex(key, i) >>> 8]++;
  const expected = N / 256;
  let chi2 = 0;
  for (const c of counts) chi2 += (c - expected) ** 2 / expected;
  // 255 degrees of freedom: mean 255, sd ≈ 22.6.
  assert.ok(chi2 < 255 + SIGMAS * Math.sqrt(2 * 255), `chi2 ${chi2}`);
});

test('no correlation between neighbouring parameters, within and across pairs, or at lag 8', () => {
  const x = draw(7, 0, N + 8);
  const bound = SIGMAS / Math.sqrt(N / 2);
  const even = (lag: number, start: number) => {
    const a = new Float64Array(N / 2);
    const b = new Float64Array(N / 2);
    for (let k = 0; k < N / 2; k++) {
      a[k] = x[2 * k + start];
      b[k] = x[2 * k + start + lag];
    }
    return correlation(a, b);
  };
  assert.ok(Math.abs(even(1, 0)) < bound, `within a pair: ${even(1, 0)}`);
  assert.ok(Math.abs(even(1, 1)) < bound, `across pairs: ${even(1, 1)}`);
  assert.ok(Math.abs(even(8, 0)) < bound, `lag 8: ${even(8, 0)}`);
});

test('no correlation between seeds j and j+1, nor between federations F and F+1', () => {
  const bound = SIGMAS / Math.sqrt(N);
  for (const j of [0, 1, 4094]) {
    const r = correlation(draw(3, j, N), draw(3, j + 1, N));
    assert.ok(Math.abs(r) < bound, `seeds ${j}, ${j + 1}: ${r}`);
  }
  for (const F of [0, 0x5eed5eed, 0xffffffff - 1]) {
    const r = correlation(draw(F, 5, N), draw(F + 1, 5, N));
    assert.ok(Math.abs(r) < bound, `federations ${F}, ${F + 1}: ${r}`);
  }
  // Same parameter, many seeds: the values across seeds are themselves standard normal draws.
  const acrossSeeds = new Float64Array(4096);
  for (let j = 0; j < 4096; j++) acrossSeeds[j] = z(11, j, 123_456);
  const m = moments(acrossSeeds);
  assert.ok(Math.abs(m.mean) < SIGMAS / 64 && Math.abs(m.variance - 1) < SIGMAS * Math.sqrt(2 / 4096));
});
