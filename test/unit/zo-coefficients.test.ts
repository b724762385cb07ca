import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertWithinExactBound, coefficientToReal, quantizeCoefficient } from '../../trainer/zo/coefficients';
import { COEFFICIENT_SCALE, EXACT_LIMIT, ZQ_MAX_ABS, roundHalfEven } from '../../protocol';

test('quantization rounds half to even on the 2^-16 grid', () => {
  const u = 1 / COEFFICIENT_SCALE;
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

test('one rounding, half to even, for the coefficient grid and ONNX QuantizeLinear', () => {
  assert.deepEqual([-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 2.4, 2.6, -2.6].map(roundHalfEven), [-4, -2, -2, -0, 0, 2, 2, 4, 2, 3, -3]);
  assert.equal(roundHalfEven(2 ** 52 + 1), 2 ** 52 + 1);
  for (let x = -1000; x <= 1000; x += 0.125) {
    const r = roundHalfEven(x);
    assert.ok(Math.abs(r - x) <= 0.5 && Number.isInteger(r));
    if (Math.abs(x % 1) === 0.5) assert.equal(Math.abs(r % 2), 0, `${x} → ${r}`);
  }
});

test('the exactness bound refuses max|Zq|·Σ|C| ≥ 2^53 and accepts anything below', () => {
  const limit = Math.ceil(EXACT_LIMIT / ZQ_MAX_ABS) - 1;
  assert.doesNotThrow(() => assertWithinExactBound(limit));
  assert.ok(ZQ_MAX_ABS * limit < EXACT_LIMIT);
  assert.throws(() => assertWithinExactBound(limit + 1), /2\^53/);
});
