// The LevelDB store gives back what it was given, and refuses what it holds in a damaged or foreign
// shape by naming the record and the field, rather than handing it on; a store the previous version wrote
// (no hash chain, no seal) still loads and is chained from its next commit.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ClassicLevel } from 'classic-level';
import { LevelFederationStore } from '../../federation/level-store';
import { recordHash, verifyChain } from '../../federation/record-chain';
import type { RoundRecord } from '../../federation/store';
import type { FederationConfig } from '../../protocol';

const config: FederationConfig = {
  k: 4,
  federationSeed: 9,
  epsilon: 1e-3,
  eta: 1e-4,
  tau: 5,
  batchSize: 2,
  sampling: 'pro',
  weighting: 'equal',
  rounds: 3,
  clientsPerRound: 1,
  deadlineMs: 1000,
};

test('a commit, a token and the config come back as they went in', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-level-'));
  try {
    const store = await LevelFederationStore.open(dir);
    await store.saveConfig(config);
    const state = {
      round: 1,
      coefficients: Float64Array.of(1, -2, 0, 4),
      residual: Float64Array.of(0.5, 0, 0, -0.25),
      importanceSum: Float64Array.of(1, 2, 0, 0),
      importanceCount: Float64Array.of(1, 1, 0, 0),
    };
    await store.commitRound(state, {
      round: 1,
      change: state.coefficients,
      participants: ['a', 'b'],
      examples: 7,
      lossBefore: 2,
      lossAfter: 1.5,
      committedAt: '2025-01-01T00:00:00.000Z',
    });
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
    // Written behind the store's back: refused as a whole; a round that cannot be read even when the
    // store is trusted; then (trusted, the round gone) record by record.
    await assert.rejects(LevelFederationStore.open(dir), /integrity record .* is missing/);
    await assert.rejects(
      LevelFederationStore.open(dir, { trustContent: true }),
      /round 1's record cannot be read \(the store's round\/0000000001 has no valid participants\).*--trust-store does not accept/,
    );
    const raw = new ClassicLevel<string, string>(dir);
    await raw.del('round/0000000001');
    await raw.close();
    const store = await LevelFederationStore.open(dir, { trustContent: true });
    await assert.rejects(store.loadConfig(), /config has no valid sampling/);
    await assert.rejects(store.getToken('abc'), /token\/abc is not JSON/);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a store written before records were chained still loads, verifies, and chains the rounds committed after it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-level-'));
  try {
    // The previous version's layout: the state's round, K and four vectors; records without link or history.
    const k = config.k;
    const head = Buffer.alloc(8);
    head.writeUInt32LE(2, 0);
    head.writeUInt32LE(k, 4);
    const vectors = [Float64Array.of(3, 0, -1, 0), Float64Array.of(0.25, 0, 0, 0), Float64Array.of(1, 0, 2, 0), Float64Array.of(1, 0, 1, 0)];
    const changes = [Float64Array.of(1, 0, 0, 0), Float64Array.of(2, 0, -1, 0)];
    const db = new ClassicLevel<string, Buffer>(dir, { valueEncoding: 'buffer' });
    await db.put('config', Buffer.from(JSON.stringify(config)));
    await db.put('state', Buffer.concat([head, ...vectors.map((v) => Buffer.from(v.buffer))]));
    for (const [i, change] of changes.entries()) {
      const record = {
        round: i + 1,
        change: Buffer.from(change.buffer).toString('base64'),
        participants: ['a'],
        examples: 1,
        lossBefore: 1,
        lossAfter: 0.5,
        committedAt: '2025-01-01T00:00:00.000Z',
      };
      await db.put(`round/${String(i + 1).padStart(10, '0')}`, Buffer.from(JSON.stringify(record)));
    }
    await db.close();
    const store = await LevelFederationStore.open(dir, { trustContent: true });
    try {
      const state = await store.loadState();
      assert.equal(state?.seal, undefined);
      assert.deepEqual(Array.from(state?.residual ?? []), [0.25, 0, 0, 0]);
      const old = await verifyChain(store);
      assert.deepEqual([old.damage, old.intact, old.unsealedRounds, old.historyComplete], [[], 2, 2, false]);
      const next = {
        round: 3,
        coefficients: Float64Array.of(3, 1, -1, 0),
        residual: Float64Array.of(0.25, -0.5, 0, 0),
        importanceSum: Float64Array.of(1, 4, 2, 0),
        importanceCount: Float64Array.of(1, 1, 1, 0),
      };
      await store.commitRound(next, {
        round: 3,
        change: Float64Array.of(0, 1, 0, 0),
        participants: ['b'],
        examples: 2,
        lossBefore: 1,
        lossAfter: 0.5,
        committedAt: '2025-01-02T00:00:00.000Z',
      });
      const third = await store.loadRound(3);
      assert.equal(third?.link?.prev, recordHash((await store.loadRound(2)) as RoundRecord), 'the first chained record links to the last unchained one');
      assert.deepEqual(Array.from(third?.after?.residual.indices ?? []), [1]);
      assert.deepEqual(Array.from(third?.after?.importanceSum.indices ?? []), [1]);
    } finally {
      await store.close();
    }
    const reopened = await LevelFederationStore.open(dir);
    try {
      const report = await verifyChain(reopened);
      assert.deepEqual([report.damage, report.intact, report.unsealedRounds], [[], 3, 2]);
    } finally {
      await reopened.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
