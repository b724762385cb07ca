// How `fedkseed simulate` deals the training data to its clients: nothing is dropped unless asked, and
// what an explicit --groups-per-client leaves out is said.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Example } from '../../trainer/data/examples';
import { planShards, type ShardOptions } from '../../simulate/shards';

/** `perGroup` windows in each of the named top-level folders. */
function windows(groups: readonly string[], perGroup: number): Example[] {
  return groups.flatMap((g) =>
    Array.from({ length: perGroup }, (_, i) => ({ id: `${g}/f${i}#0`, group: g, splitKey: `${g}/f${i}`, ids: new Int32Array([1, 2, 3]) })),
  );
}

// The top-level folders of this repository that hold code: 11 groups for the default 3 clients.
const FOLDERS = ['.', 'bench', 'bin', 'cli', 'extension', 'federation', 'protocol', 'scripts', 'test', 'trainer', 'webview'];
const defaults: ShardOptions = { clients: 3, mode: 'auto', alpha: 0.5, minPerClient: 4, labelled: false, seed: 42 };

test('simulate defaults: every top-level folder goes to some client', () => {
  const train = windows(FOLDERS, 10);
  const plan = planShards(train, defaults);
  assert.equal(plan.mode, 'group');
  assert.equal(plan.shards.length, 3);
  assert.equal(plan.shards.flat().length, train.length, 'every training window is dealt');
  assert.deepEqual([...new Set(plan.shards.flat().map((e) => e.group))].sort(), [...FOLDERS].sort());
  assert.deepEqual(plan.unassigned, { groups: [], examples: 0 });
  assert.equal(plan.note, undefined);
});

test('--groups-per-client that leaves groups out says which, and how much data', () => {
  const train = windows(FOLDERS, 10);
  const plan = planShards(train, { ...defaults, mode: 'group', groupsPerClient: 3 });
  assert.equal(plan.shards.flat().length, 90);
  assert.equal(plan.unassigned.groups.length, 2);
  assert.equal(plan.unassigned.examples, 20);
  assert.match(plan.note ?? '', new RegExp(`${plan.unassigned.groups.map((g) => g.replace('.', '\\.')).join(', ')}.*20 training windows`));
});
