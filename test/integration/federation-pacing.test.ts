// Deadlines that follow the honest clients' pace, against a real server: two clients answer in tens of
// milliseconds and one takes 2.5 s a round. The first rounds wait for it (there is no pace yet); then a
// round whose majority is in closes at the paced deadline instead of waiting for the slow one.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FederationConfig } from '../../protocol';
import { startServer } from '../../federation/server';
import { createToken } from '../../federation/tokens';
import { FederationClient } from '../../federation/client/federation-client';
import { QuadraticToyTrainer } from '../../bench/toy-trainer';

const config: FederationConfig = {
  k: 64,
  federationSeed: 31,
  epsilon: 1e-3,
  eta: 0.05,
  tau: 4,
  batchSize: 1,
  sampling: 'uniform',
  weighting: 'examples',
  rounds: 6,
  clientsPerRound: 3,
  deadlineMs: 8000,
};

const SLOW_MS = 2500;
const MIN_DEADLINE_MS = 300;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test(
  'after the first rounds, a round whose majority uploaded closes at the paced deadline instead of waiting for a slow client',
  { timeout: 60_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedk-pacing-'));
    const model = new QuadraticToyTrainer({ dimension: 8, clientSeed: 0 });
    const server = await startServer({
      config,
      modelHash: model.modelHash,
      generatorVersion: 1,
      paramCount: 8,
      storePath: join(dir, 'store'),
      minClients: 3,
      pacing: { multiple: 4, minDeadlineMs: MIN_DEADLINE_MS, warmupRounds: 2 },
    });
    const started = new Map<number, number>();
    const took = new Map<number, number>();
    const participants = new Map<number, readonly string[]>();
    server.events.on('roundStarted', (e) => started.set(e.round, Date.now()));
    server.events.on('roundCommitted', (e) => {
      took.set(e.round, Date.now() - (started.get(e.round) ?? NaN));
      participants.set(e.round, e.participants);
    });
    const clients: FederationClient[] = [];
    const runs: Promise<unknown>[] = [];
    for (const [id, ms] of [
      ['fast-a', 20],
      ['fast-b', 40],
      ['slow', SLOW_MS],
    ] as const) {
      const { token } = await createToken(server.store, id, id);
      const trainer = new QuadraticToyTrainer({ dimension: 8, clientSeed: id.length });
      const train = trainer.trainRound.bind(trainer);
      trainer.trainRound = async (request, onStep) => {
        await sleep(ms);
        return train(request, onStep);
      };
      const client = new FederationClient({ url: server.url, clientId: id, token, trainer, backoff: { initialMs: 20, maxMs: 200, maxAttempts: 5 } });
      clients.push(client);
      runs.push(client.run().catch((err: unknown) => err));
    }
    try {
      const until = Date.now() + 45_000;
      while (server.stats().committedRound < config.rounds && Date.now() < until) await sleep(50);
      assert.equal(server.stats().committedRound, config.rounds);
      console.log(`round durations (ms): ${[...took].map(([r, ms]) => `${r}: ${ms}`).join(', ')}`);
      // No pace yet: the first two rounds wait for the slow client.
      for (const r of [1, 2]) {
        assert.ok((took.get(r) as number) >= SLOW_MS - 100, `round ${r} waited for every client (${took.get(r)} ms)`);
        assert.deepEqual([...(participants.get(r) ?? [])].sort(), ['fast-a', 'fast-b', 'slow']);
      }
      // Paced: 4 × the pace of the fast majority is below the minimum, so each round closes at about it.
      for (let r = 3; r <= config.rounds; r++) {
        assert.ok((took.get(r) as number) < SLOW_MS - 1000, `round ${r} closed at its paced deadline (${took.get(r)} ms), not the slow client's ${SLOW_MS} ms`);
        assert.ok(participants.get(r)?.includes('fast-a') && participants.get(r)?.includes('fast-b'));
      }
    } finally {
      for (const c of clients) c.stop();
      await Promise.all(runs);
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
