import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { DEFAULT_PACING, pacedDeadlineMs, roundPace, type Pacing } from '../../federation/pacing';

const pacing: Pacing = { multiple: 4, minDeadlineMs: 1000, historyRounds: 8, warmupRounds: 2 };

test("a round's pace is the lower median over its sampled clients, and none unless more than half uploaded", () => {
  assert.equal(roundPace([100, 300, 200], 3), 200);
  // A sampled client without an upload counts as never.
  assert.equal(roundPace([100, 200], 3), 200);
  assert.equal(roundPace([100, 200, 300], 4), 200);
  assert.equal(roundPace([100, 200], 4), null, 'half is not more than half');
  assert.equal(roundPace([], 0), null);
});

test('the paced deadline: only with more than half uploaded and enough history, at multiple × the recent pace within [min, deadline]', () => {
  assert.equal(pacedDeadlineMs([500], 3, 3, 60_000, pacing), null, 'before the warm-up rounds');
  assert.equal(pacedDeadlineMs([500, 700], 1, 2, 60_000, pacing), null, 'half uploaded: the configured deadline holds');
  assert.equal(pacedDeadlineMs([500, 700], 2, 3, 60_000, pacing), 2000, '4 × the lower median 500');
  assert.equal(pacedDeadlineMs([10, 20, 30], 2, 3, 60_000, pacing), 1000, 'never below the minimum');
  assert.equal(pacedDeadlineMs([50_000, 60_000], 2, 3, 60_000, pacing), 60_000, 'never beyond the configured deadline');
  // Only the last historyRounds paces count: old slow rounds age out.
  const history = [...new Array<number>(8).fill(100_000), ...new Array<number>(8).fill(500)];
  assert.equal(pacedDeadlineMs(history, 3, 3, 600_000, pacing), 2000);
  assert.ok(DEFAULT_PACING.minDeadlineMs > 0 && DEFAULT_PACING.multiple >= 2);
});

/** A seeded generator (xorshift32), so a failure reproduces. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

test('colluders fewer than half of each sample keep the paced deadline within multiple × the honest upload times, and within [min, deadline]', () => {
  const random = rng(20240611);
  const deadline = 600_000;
  for (let trial = 0; trial < 2000; trial++) {
    const sampled = 3 + Math.floor(random() * 8);
    const colluders = Math.floor(random() * Math.ceil(sampled / 2));
    assert.ok(2 * colluders < sampled);
    const history: number[] = [];
    let fastest = Infinity;
    let slowest = 0;
    const rounds = 2 + Math.floor(random() * 10);
    for (let r = 0; r < rounds; r++) {
      // Honest clients all upload, between 1 and 5 s; colluders upload at once, at the deadline, or never.
      const honest = Array.from({ length: sampled - colluders }, () => 1000 + 4000 * random());
      const forged = Array.from({ length: colluders }, () => [0, deadline, null][Math.floor(random() * 3)]);
      const uploads = [...honest, ...forged.filter((v): v is number => v !== null)];
      const pace = roundPace(uploads, sampled);
      assert.ok(pace !== null, 'the honest majority alone makes a pace');
      assert.ok(pace >= Math.min(...honest) && pace <= Math.max(...honest), `a round's pace ${pace} lies within its honest times`);
      history.push(pace);
      fastest = Math.min(fastest, ...honest);
      slowest = Math.max(slowest, ...honest);
    }
    const at = pacedDeadlineMs(history, sampled - colluders, sampled, deadline, pacing);
    if (history.length < pacing.warmupRounds) continue;
    assert.ok(at !== null);
    assert.ok(at >= pacing.minDeadlineMs && at <= deadline);
    assert.ok(
      at >= Math.min(deadline, Math.max(pacing.minDeadlineMs, pacing.multiple * fastest)) - 1e-9,
      'not shrunk below multiple × the fastest honest time',
    );
    assert.ok(at <= Math.max(pacing.minDeadlineMs, pacing.multiple * slowest) + 1e-9, 'not stretched beyond multiple × the slowest honest time');
  }
});
