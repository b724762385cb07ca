// The device forward's shape buckets: half-octave steps, at most 50% padding, never more than a power of two.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bucketLength, nextPow2 } from '../../trainer/device/resident';

test('bucketLength: covers n, at most 1.5·n past the minimum, never above the next power of two, monotone', () => {
  for (const min of [1, 16]) {
    let previous = 0;
    for (let n = 1; n <= 4096; n++) {
      const b = bucketLength(n, min);
      assert.ok(b >= n && b >= min, `${n} → ${b}`);
      assert.ok(b <= nextPow2(Math.max(n, min)), `${n} → ${b}`);
      if (n >= min) assert.ok(b <= 1.5 * n, `${n} → ${b}: more than 50% padding`);
      if (min === 16) assert.equal(b % 8, 0, `${n} → ${b}: not a multiple of 8`);
      assert.ok(b >= previous);
      previous = b;
    }
  }
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 13].map((n) => bucketLength(n)),
    [1, 2, 3, 4, 6, 6, 8, 8, 12, 16],
  );
  assert.deepEqual(
    [1, 16, 17, 25, 33, 49, 65, 97, 129].map((n) => bucketLength(n, 16)),
    [16, 16, 24, 32, 48, 64, 96, 128, 192],
  );
  // Two buckets per octave: 16..128 is 7 sequence shapes (powers of two: 4).
  assert.equal(new Set(Array.from({ length: 128 }, (_, i) => bucketLength(i + 1, 16))).size, 7);
});
