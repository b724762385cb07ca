// The LevelDB store gives back what it was given, and refuses what it holds in a damaged or foreign
// shape by naming the record and the field, rather than handing it on.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ClassicLevel } from 'classic-level';
import { LevelFederationStore } from '../../federation/level-store';
import type { FederationConfig } from '../../protocol';

const config: FederationConfig = { k: 4, federationSeed: 9, epsilon: 1e-3, eta: 1e-4, tau: 5, batchSize: 2, sampling: 'pro', weighting: 'equal', rounds: 3, clientsPerRound: 1, deadlineMs: 1000 };

test('a commit, a token and the config come back as they went in', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-level-'));
  try {
    const store = await LevelFederationStore.open(dir);
    await store.saveConfig(config);
    const state = { round: 1, coefficients: Float64Array.of(1, -2, 0, 4), residual: Float64Array.of(0.5, 0, 0, -0.25), importanceSum: Float64Array.of(1, 2, 0, 0), importanceCount: Float64Array.of(1, 1, 0, 0) };
    await store.commitRound(state, { round: 1, change: state.coefficients, participants: ['a', 'b'], examples: 7, lossBefore: 2, lossAfter: 1.5, committedAt: '2025-01-01T00:00:00.000Z' });
    await store.putToken({ id: 'abc', label: 'alice', salt: '00', hash: 'ff', createdAt: '2025-01-01T00:00:00.000Z' });
    assert.deepEqual(await store.loadConfig(), config);
    const { seal, ...loaded } = (await store.loadState()) ?? { seal: undefined };
    assert.deepEqual(loaded, state);
    assert.ok(seal, 'the state comes back sealed');
    assert.deepEqual((await store.loadRound(1))?.participants, ['a', 'b']);
    assert.deepEqual(Array.from((await store.loadRound(1))?.change ?? []), [1, -2, 0, 4]);
    assert.equal((await store.listTokens())[0]?.label, 'alice');
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('records of the wrong shape are refused by name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-level-'));
  try {
    const db = new ClassicLevel<string, string>(dir);
    await db.put('config', JSON.stringify({ ...config, sampling: 'random' }));
    await db.put('round/0000000001', JSON.stringify({ round: 1, change: '', participants: 'a', examples: 1, lossBefore: 0, lossAfter: 0, committedAt: '' }));
    await db.put('token/abc', '{ not json');
    await db.close();
    // Written behind the store's back: refused as a whole, then (trusted) record by record.
    await assert.rejects(LevelFederationStore.open(dir), /integrity record .* is missing/);
    const store = await LevelFederationStore.open(dir, { trustContent: true });
    await assert.rejects(store.loadConfig(), /config has no valid sampling/);
    await assert.rejects(store.loadRound(1), /round\/0000000001 has no valid participants/);
    await assert.rejects(store.getToken('abc'), /token\/abc is not JSON/);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
