// Values the store accepts must not break it. Two clients of a real federation report loss sums of
// 1.7e308 each (finite, but their sum is not): the round commits finite losses, the client whose loss
// report was left out is named, and the store verifies with every round intact. A store an older server
// wrote with an infinite loss (stored by JSON as no value) verifies and is repaired with no round lost.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FederationConfig } from '../../protocol';
import { LevelFederationStore } from '../../federation/level-store';
import { verifyChain } from '../../federation/record-chain';
import { repairFromHistory } from '../../federation/repair';
import { startServer } from '../../federation/server';
import type { FederationState, RoundRecord } from '../../federation/store';
import { FederationClient } from '../../federation/client/federation-client';
import { QuadraticToyTrainer } from '../../bench/toy-trainer';

const config: FederationConfig = {
  k: 32,
  federationSeed: 77,
  epsilon: 1e-3,
  eta: 0.05,
  tau: 3,
  batchSize: 1,
  sampling: 'pro',
  weighting: 'examples',
  rounds: 3,
  clientsPerRound: 3,
  deadlineMs: 5000,
};
const HUGE = 1.7e308;

test('two finite loss sums of 1.7e308 in one round: finite losses are committed, the client is named, the store verifies', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-values-'));
  const storePath = join(dir, 'store');
  try {
    const model = new QuadraticToyTrainer({ dimension: 8, clientSeed: 0 });
    const server = await startServer({ config, modelHash: model.modelHash, generatorVersion: 1, paramCount: 8, storePath, requireToken: false });
    const excluded: { round: number; clientId: string; reason: string }[] = [];
    server.events.on('lossExcluded', (e) => excluded.push(e));
    const committed: { round: number; lossBefore: number; lossAfter: number }[] = [];
    server.events.on('roundCommitted', (e) => committed.push({ round: e.round, lossBefore: e.lossBefore, lossAfter: e.lossAfter }));
    try {
      const clients = ['honest', 'liar-1', 'liar-2'].map((id, i) => {
        const trainer = new QuadraticToyTrainer({ dimension: 8, clientSeed: i + 1 });
        if (id.startsWith('liar')) {
          const train = trainer.trainRound.bind(trainer);
          trainer.trainRound = async (request, onStep) => ({
            ...(await train(request, onStep)),
            lossBefore: { sum: HUGE, count: 1 },
            lossAfter: { sum: HUGE, count: 1 },
          });
        }
        return new FederationClient({ url: server.url, clientId: id, token: 'open', trainer, backoff: { initialMs: 20, maxMs: 200 } });
      });
      const results = await Promise.all(clients.map((c) => c.run()));
      assert.deepEqual(
        results.map((r) => r.finalRound),
        [3, 3, 3],
      );
      assert.equal(new Set(results.map((r) => r.digest)).size, 1);
    } finally {
      await server.close();
    }
    assert.equal(committed.length, 3);
    for (const c of committed)
      assert.ok(Number.isFinite(c.lossBefore) && Number.isFinite(c.lossAfter), `round ${c.round}: losses ${c.lossBefore}, ${c.lossAfter}`);
    assert.ok(excluded.length >= 3, `a loss report is left out in each round (${excluded.length})`);
    for (const e of excluded) {
      assert.match(e.clientId, /^liar-[12]$/, 'the client named is one of the two whose sums overflow');
      assert.match(e.reason, /loss/);
    }
    const store = await LevelFederationStore.open(storePath);
    try {
      for (let r = 1; r <= 3; r++) {
        const record = await store.loadRound(r);
        assert.ok(record && Number.isFinite(record.lossBefore) && Number.isFinite(record.lossAfter), `round ${r}'s stored losses are finite`);
      }
      const chain = await verifyChain(store);
      assert.deepEqual(chain.damage, []);
      assert.equal(chain.intact, 3);
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a store written with an infinite loss (stored as no value) verifies, and repair keeps every round bit for bit', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-values-'));
  try {
    const k = 8;
    const store = await LevelFederationStore.open(join(dir, 'old'));
    const states: FederationState[] = [];
    try {
      await store.saveConfig({ ...config, k });
      let c = new Float64Array(k);
      // Four rounds as an older server committed them; round 2's mean losses overflowed to ±Infinity.
      for (let round = 1; round <= 4; round++) {
        const change = Float64Array.from({ length: k }, (_, j) => ((round * 7 + j * 3) % 5) - 2);
        c = c.map((x, j) => x + change[j]);
        const next: FederationState = {
          round,
          coefficients: c,
          residual: Float64Array.from({ length: k }, (_, j) => (j === round ? 0.25 : 0)),
          importanceSum: new Float64Array(k).fill(round),
          importanceCount: new Float64Array(k).fill(round),
        };
        const record: RoundRecord = {
          round,
          change,
          participants: ['a', 'b'],
          examples: 2,
          lossBefore: round === 2 ? Infinity : 1 / round,
          lossAfter: round === 2 ? -Infinity : 0.5 / round,
          committedAt: `2026-01-0${round}T00:00:00.000Z`,
        };
        await store.commitRound(next, record);
        states.push(next);
      }
      const chain = await verifyChain(store);
      assert.deepEqual(chain.damage, [], 'the infinite loss stored as no value is not damage');
      assert.equal(chain.intact, 4);
    } finally {
      await store.close();
    }
    const source = await LevelFederationStore.open(join(dir, 'old'));
    const target = await LevelFederationStore.open(join(dir, 'repaired'));
    try {
      const report = await repairFromHistory(source, target);
      assert.equal(report.kept, 4, 'no intact round is dropped');
      const got = await target.loadState();
      assert.ok(got);
      for (const v of ['coefficients', 'residual', 'importanceSum', 'importanceCount'] as const)
        assert.ok(Buffer.from(got[v].buffer).equals(Buffer.from(states[3][v].buffer)), v);
      const chain = await verifyChain(target);
      assert.deepEqual(chain.damage, []);
      assert.equal(chain.intact, 4);
    } finally {
      await source.close();
      await target.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
