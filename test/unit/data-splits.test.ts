// Train/held-out split by hash, and client splits (whole groups, Dirichlet label skew).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng } from '../../trainer/data/rng';
import { hashUnit, sampleGamma, splitByGroup, splitDirichlet, splitTrainHeldOut } from '../../trainer/data/splits';

interface Item {
  readonly id: string;
  readonly group: string;
  readonly splitKey: string;
}
const items = (n: number, groups: number): Item[] =>
  Array.from({ length: n }, (_, i) => ({ id: `e${i}`, group: `g${i % groups}`, splitKey: `file${Math.floor(i / 3)}` }));

test('held-out split: by split key, monotone in the fraction, about the requested share', () => {
  const data = items(3000, 5); // 1000 split keys, 3 examples each
  const none = splitTrainHeldOut(data, 0);
  const all = splitTrainHeldOut(data, 1);
  assert.equal(none.heldOut.length, 0);
  assert.equal(all.train.length, 0);
  const ten = splitTrainHeldOut(data, 0.1);
  const twenty = splitTrainHeldOut(data, 0.2);
  // Examples sharing a split key (windows of one file) land on the same side.
  const side = new Map<string, boolean>();
  for (const e of twenty.heldOut) side.set(e.splitKey, true);
  for (const e of twenty.train) assert.equal(side.get(e.splitKey), undefined);
  // Raising the fraction only adds examples to the held-out side.
  const heldAt20 = new Set(twenty.heldOut.map((e) => e.id));
  assert.ok(ten.heldOut.every((e) => heldAt20.has(e.id)));
  // 1000 keys at p = 0.2: mean 200 keys, sd sqrt(1000·0.2·0.8) ≈ 12.6; ±60 keys is over 4 sd.
  assert.ok(Math.abs(twenty.heldOut.length / 3 - 200) < 60, `${twenty.heldOut.length}`);
  assert.notDeepEqual(splitTrainHeldOut(data, 0.2, 'other salt').heldOut, twenty.heldOut);
  assert.equal(hashUnit('file1'), hashUnit('file1'));
  assert.throws(() => splitTrainHeldOut(data, 1.5), RangeError);
});

test('held-out split: small data keeps at least one example on each side when the share is above 0', () => {
  // Eight small files (one window each) used to hash all to the training side at 0.1 and 0.25.
  for (let files = 2; files <= 12; files++) {
    const data = Array.from({ length: files }, (_, i) => ({ id: `file${i}.py#0`, splitKey: `file${i}.py` }));
    for (const fraction of [0.01, 0.1, 0.25, 0.5, 0.9, 0.99]) {
      const { train, heldOut } = splitTrainHeldOut(data, fraction);
      assert.ok(heldOut.length >= 1 && train.length >= 1, `${files} files at ${fraction}: ${train.length} / ${heldOut.length}`);
      assert.equal(train.length + heldOut.length, files);
    }
    // Still monotone: raising the share only adds to the held-out side.
    const small = new Set(splitTrainHeldOut(data, 0.01).heldOut.map((e) => e.id));
    assert.ok([...small].every((id) => splitTrainHeldOut(data, 0.5).heldOut.some((e) => e.id === id)));
    assert.equal(splitTrainHeldOut(data, 0).heldOut.length, 0);
    assert.equal(splitTrainHeldOut(data, 1).train.length, 0);
  }
  // One file of several windows is split by window; a single example stays in training.
  const oneFile = Array.from({ length: 6 }, (_, i) => ({ id: `a.txt#${i}`, splitKey: 'a.txt' }));
  const split = splitTrainHeldOut(oneFile, 0.1);
  assert.ok(split.heldOut.length >= 1 && split.train.length >= 1, `${split.train.length} / ${split.heldOut.length}`);
  assert.deepEqual(splitTrainHeldOut([{ id: 'x', splitKey: 'x' }], 0.5), { train: [{ id: 'x', splitKey: 'x' }], heldOut: [] });
});

test('split by group: given the number of clients, every group is dealt', () => {
  const data = items(110, 11); // 11 groups (top-level folders) for 3 clients
  const shards = splitByGroup(data, { clients: 3, seed: 42 });
  assert.equal(shards.length, 3);
  assert.equal(shards.flat().length, 110);
  const counts = shards.map((s) => new Set(s.map((e) => e.group)).size);
  assert.deepEqual([...counts].sort(), [3, 4, 4]);
  // Groups that divide evenly are dealt as with an explicit groupsPerClient.
  const six = items(60, 6);
  assert.deepEqual(splitByGroup(six, { clients: 3, seed: 9 }), splitByGroup(six, { clients: 3, groupsPerClient: 2, seed: 9 }));
  // An explicit groupsPerClient may leave groups out; that is the caller's choice.
  assert.equal(splitByGroup(data, { clients: 3, groupsPerClient: 2, seed: 42 }).flat().length, 60);
});

test('split by group: whole groups per client, disjoint, seeded', () => {
  const data = items(60, 6);
  const shards = splitByGroup(data, { groupsPerClient: 2, seed: 9 });
  assert.equal(shards.length, 3);
  const groupsOf = shards.map((s) => [...new Set(s.map((e) => e.group))].sort());
  for (const g of groupsOf) assert.equal(g.length, 2);
  assert.deepEqual(groupsOf.flat().sort(), ['g0', 'g1', 'g2', 'g3', 'g4', 'g5']);
  // 60 examples over 6 groups: 10 per group, 20 per client.
  assert.deepEqual(
    shards.map((s) => s.length),
    [20, 20, 20],
  );
  assert.deepEqual(splitByGroup(data, { groupsPerClient: 2, seed: 9 }), shards);
  // One group per client (one Natural Instructions task per client) is the default.
  assert.equal(splitByGroup(data, { seed: 1 }).length, 6);
  assert.throws(() => splitByGroup(data, { clients: 4, groupsPerClient: 2, seed: 1 }), /cannot give 4 clients 2 group\(s\) each: the data has 6 group\(s\)/);
});

test('Gamma sampler: mean equals the shape (checked for shapes below and above 1)', () => {
  for (const shape of [0.5, 3]) {
    const rng = createRng(11);
    let sum = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) sum += sampleGamma(shape, rng);
    // Var = shape, so the mean's sd is sqrt(shape / n): 0.005 and 0.012; allow 6 sd.
    assert.ok(Math.abs(sum / n - shape) < 6 * Math.sqrt(shape / n), `shape ${shape}: mean ${sum / n}`);
  }
});

test('Dirichlet split: every example exactly once, seeded, skew grows as alpha shrinks', () => {
  const data = items(400, 4); // 4 categories × 100
  const skew = (alpha: number) => {
    const shards = splitDirichlet(data, { clients: 10, alpha, seed: 5 });
    const ids = shards.flat().map((e) => e.id);
    assert.equal(ids.length, 400);
    assert.equal(new Set(ids).size, 400);
    assert.ok(shards.every((s) => s.length >= 1));
    assert.deepEqual(splitDirichlet(data, { clients: 10, alpha, seed: 5 }), shards);
    // Mean over clients of the largest category's share of the client's data.
    const shares = shards.map((s) => {
      const counts = new Map<string, number>();
      for (const e of s) counts.set(e.group, (counts.get(e.group) ?? 0) + 1);
      return Math.max(...counts.values()) / s.length;
    });
    return shares.reduce((a, b) => a + b, 0) / shares.length;
  };
  // With alpha = 1000 each client holds about 10 of each category (largest share near 1/4);
  // with alpha = 0.05 most clients are dominated by one category.
  const flat = skew(1000);
  const sharp = skew(0.05);
  assert.ok(flat < 0.4, `alpha 1000: ${flat}`);
  assert.ok(sharp > 0.8, `alpha 0.05: ${sharp}`);
  assert.throws(() => splitDirichlet(items(5, 1), { clients: 10, alpha: 1, seed: 1 }), /5 examples cannot give 10 clients 1 each/);
});
