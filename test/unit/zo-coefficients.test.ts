import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  COEFFICIENT_UNITS,
  addCoefficients,
  assertWithinExactBound,
  coefficientDelta,
  coefficientToReal,
  createCoefficients,
  exactBoundHeadroom,
  quantizeCoefficient,
  quantizeCoefficients,
  subtractCoefficients,
} from '../../trainer/zo/coefficients';
import { EXACT_LIMIT, ZQ_MAX_ABS } from '../../protocol';

test('quantisation rounds half to even on the 2^-16 grid', () => {
  const u = 1 / COEFFICIENT_UNITS;
  assert.equal(quantizeCoefficient(0.5 * u), 0);
  assert.equal(quantizeCoefficient(1.5 * u), 2);
  assert.equal(quantizeCoefficient(2.5 * u), 2);
  assert.equal(quantizeCoefficient(-0.5 * u), 0);
  assert.ok(Object.is(quantizeCoefficient(-0.4 * u), 0), 'no negative zero');
  assert.equal(quantizeCoefficient(-1.5 * u), -2);
  assert.equal(quantizeCoefficient(-2.5 * u), -2);
  assert.equal(quantizeCoefficient(0.75), 49_152);
  assert.equal(coefficientToReal(49_152), 0.75);
  // Values on the grid survive a round trip; others move by at most half a unit.
  for (const x of [1e-3, -123.456, 7.25, 3e5]) {
    const c = quantizeCoefficient(x);
    assert.ok(Math.abs(coefficientToReal(c) - x) <= 0.5 * u);
    assert.equal(quantizeCoefficient(coefficientToReal(c)), c);
  }
  assert.throws(() => quantizeCoefficient(Number.NaN), /non-finite/);
  assert.throws(() => quantizeCoefficient(2 ** 40), /exact integer range/);
});

test('vectors add, subtract and yield sparse deltas that rebuild the target', () => {
  const a = quantizeCoefficients([0.5, -1, 0, 2]);
  const b = quantizeCoefficients([0.5, 1, -3, 0]);
  const sum = addCoefficients(a, b);
  assert.deepEqual(subtractCoefficients(sum, b), a);
  const { seeds, deltas } = coefficientDelta(a, sum);
  assert.deepEqual([...seeds], [0, 1, 2], 'exactly the entries where b is non-zero');
  const rebuilt = a.slice();
  seeds.forEach((j, n) => (rebuilt[j] += deltas[n]));
  assert.deepEqual(rebuilt, sum);
  assert.throws(() => addCoefficients(a, createCoefficients(3)), /length/);
  assert.throws(() => createCoefficients(0), /positive/);
  assert.throws(() => addCoefficients(Float64Array.of(2 ** 53 - 1), Float64Array.of(1)), /exact integer/);
});

test('the exactness bound refuses max|Zq|·Σ|C| ≥ 2^53 and accepts anything below', () => {
  const limit = Math.ceil(EXACT_LIMIT / ZQ_MAX_ABS) - 1;
  assert.doesNotThrow(() => assertWithinExactBound(limit));
  assert.ok(ZQ_MAX_ABS * limit < EXACT_LIMIT);
  assert.throws(() => assertWithinExactBound(limit + 1), /2\^53/);
  assert.equal(exactBoundHeadroom(limit), 0);
  assert.equal(exactBoundHeadroom(limit - 10), 10);
});
