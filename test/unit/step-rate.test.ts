// The time-left estimate counts only the steps done in this process over the time since it began: a
// resumed run's earlier steps and a federation's jumps between rounds are not work done here.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { StepRate } from '../../extension/state/stepRate';

test('a local run resumed at step 150 of 200: 10 steps in 10 s leave 40 s, not a rate from step 0', () => {
  const rate = new StepRate();
  rate.observe(0, { round: 0, step: 150 });
  for (let i = 1; i <= 10; i++) rate.observe(i * 1000, { round: 0, step: 150 + i });
  assert.equal(rate.steps, 10);
  assert.equal(rate.rate(10_000), 1);
  assert.equal(rate.secondsLeft(10_000, 200 - 160), 40);
});

test('a run from step 0 at 2 steps per second', () => {
  const rate = new StepRate();
  rate.observe(0, { round: 0, step: 0 });
  rate.observe(5000, { round: 0, step: 10 });
  assert.equal(rate.secondsLeft(5000, 90), 45);
});

test('the time before the first step counts as elapsed in this process (loading, the first evaluation)', () => {
  const rate = new StepRate();
  rate.observe(0, { round: 0, step: 100 });
  rate.observe(4000, { round: 0, step: 101 });
  rate.observe(5000, { round: 0, step: 102 });
  assert.equal(rate.rate(5000), 2 / 5);
});

test('no estimate before a step is done or before a second has passed', () => {
  const rate = new StepRate();
  assert.equal(rate.secondsLeft(0, 10), null);
  rate.observe(0, { round: 0, step: 50 });
  assert.equal(rate.secondsLeft(5000, 10), null, 'no step done yet');
  rate.observe(500, { round: 0, step: 51 });
  assert.equal(rate.secondsLeft(500, 10), null, 'under a second of work');
  assert.ok((rate.secondsLeft(1000, 10) ?? 0) > 0);
});

test("a federation rejoined at round 4 (τ = 50): the jump to the round's step is not work done", () => {
  const rate = new StepRate();
  // Welcomed: the committed round, no step yet.
  rate.observe(0, { round: 4, step: 0 });
  // Round 5 starts at its step 0, then 20 steps in 10 s.
  rate.observe(1000, { round: 5, step: 0 });
  for (let i = 1; i <= 20; i++) rate.observe(1000 + i * 450, { round: 5, step: i });
  assert.equal(rate.steps, 20);
  assert.equal(rate.rate(10_000), 2);
});

test('a federation round this client sat out adds nothing; the steps of the next round are counted from its start', () => {
  const rate = new StepRate();
  rate.observe(0, { round: 1, step: 0 });
  rate.observe(1000, { round: 1, step: 8 });
  // Round 2 went to other clients; round 3's status is first seen at its step 2 (statuses are throttled).
  rate.observe(3000, { round: 3, step: 2 });
  rate.observe(4000, { round: 3, step: 8 });
  assert.equal(rate.steps, 16);
  assert.equal(rate.rate(4000), 4);
});

test('a status that repeats or goes back (a restarted round) adds nothing', () => {
  const rate = new StepRate();
  rate.observe(0, { round: 0, step: 10 });
  rate.observe(1000, { round: 0, step: 12 });
  rate.observe(1500, { round: 0, step: 12 });
  rate.observe(2000, { round: 0, step: 11 });
  rate.observe(3000, { round: 0, step: 13 });
  assert.equal(rate.steps, 4);
});
