// The divergence rule of local runs (trainer/divergence.ts), on loss sequences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DIVERGENCE_NATS, DIVERGENCE_WINDOW, DivergenceWatch } from '../../trainer/divergence';

const step = (loss: number) => ({ step: 0, seed: 0, lossPlus: loss, lossMinus: loss, g: 0, skipped: !Number.isFinite(loss) });

test('held-out: non-finite or more than DIVERGENCE_NATS above the start diverges, the first evaluation never does', () => {
  const watch = new DivergenceWatch();
  assert.equal(watch.heldOut(9, null), null);
  assert.equal(watch.heldOut(5 + DIVERGENCE_NATS, 5), null);
  assert.match(watch.heldOut(5 + DIVERGENCE_NATS + 0.01, 5) ?? '', /nats above the start/);
  assert.match(watch.heldOut(Number.POSITIVE_INFINITY, 5) ?? '', /not finite/);
});

test("training loss: the last window's mean against the first window's; non-finite steps in a row", () => {
  const rising = new DivergenceWatch();
  const reasons: (string | null)[] = [];
  for (let i = 0; i < 3 * DIVERGENCE_WINDOW; i++) reasons.push(rising.step(step(i < DIVERGENCE_WINDOW ? 5 : 5 + 2 * DIVERGENCE_NATS)));
  assert.ok(
    reasons.slice(0, DIVERGENCE_WINDOW).every((r) => r === null),
    'never before both windows are full',
  );
  assert.match(reasons.at(-1) ?? '', /rose from 5\.0000/);

  const steady = new DivergenceWatch();
  for (let i = 0; i < 3 * DIVERGENCE_WINDOW; i++) assert.equal(steady.step(step(5 + (i % 2) * 0.5)), null);

  const nan = new DivergenceWatch();
  for (let i = 0; i < DIVERGENCE_WINDOW - 1; i++) assert.equal(nan.step(step(Number.NaN)), null);
  assert.match(nan.step(step(Number.NaN)) ?? '', /not finite for 20 steps/);
  assert.equal(nan.step(step(5)), null, 'a finite step resets the count');
});
