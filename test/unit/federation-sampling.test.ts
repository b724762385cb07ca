// Keyed client sampling (federation/sampling.ts): a round's key comes from the server's secret, the
// round and the attempt; the same key draws the same sample from the same candidates, and over keys every
// candidate is drawn equally often.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { sampleClientsWithKey, samplingKey } from '../../federation/sampling';

const secret = new Uint8Array(32).fill(3);
const ids = ['f', 'a', 'c', 'e', 'b', 'd'];

test("a round's key is the secret's for (round, attempt); the same key draws the same sample, whatever the candidates' order", () => {
  const k = samplingKey(secret, 4, 1);
  assert.equal(k.length, 32);
  assert.deepEqual(samplingKey(secret, 4, 1), k);
  for (const other of [samplingKey(secret, 4, 0), samplingKey(secret, 5, 1), samplingKey(new Uint8Array(32).fill(4), 4, 1)]) assert.notDeepEqual(other, k);
  const sample = sampleClientsWithKey(ids, 3, k);
  assert.equal(new Set(sample).size, 3);
  assert.deepEqual(sampleClientsWithKey([...ids].reverse(), 3, k), sample);
  assert.deepEqual(sampleClientsWithKey(ids, 10, k).sort(), [...ids].sort());
});

test('over many keys every candidate is drawn equally often (within 5 standard deviations)', () => {
  const counts = new Map<string, number>();
  const n = 3000;
  for (let r = 1; r <= n; r++) for (const id of sampleClientsWithKey(ids, 2, samplingKey(secret, r, 0))) counts.set(id, (counts.get(id) ?? 0) + 1);
  const p = 2 / ids.length;
  const sd = Math.sqrt(n * p * (1 - p));
  for (const id of ids) assert.ok(Math.abs((counts.get(id) ?? 0) - n * p) < 5 * sd, `${id}: ${counts.get(id)} of ${n}`);
});
