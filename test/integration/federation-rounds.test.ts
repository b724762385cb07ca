// Real federations on loopback: replicas agree bit for bit every round, a client that misses rounds
// catches up to the same digest, and a Pro round at K = 4096, τ = 200 fits the 9,000-byte budget.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FederationConfig } from '../../protocol';
import { startServer, type FederationServer } from '../../federation/server';
import { FederationClient } from '../../federation/client/federation-client';
import { QuadraticToyTrainer } from '../../bench/toy-trainer';

const base: FederationConfig = {
  k: 256,
  federationSeed: 1234,
  epsilon: 1e-3,
  eta: 0.05,
  tau: 20,
  batchSize: 1,
  sampling: 'uniform',
  weighting: 'examples',
  rounds: 4,
  clientsPerRound: 3,
  deadlineMs: 5000,
};

async function withServer<T>(
  config: FederationConfig,
  extra: { minClients?: number; dimension?: number },
  body: (server: FederationServer, dir: string) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-'));
  const dimension = extra.dimension ?? 16;
  const trainer = new QuadraticToyTrainer({ dimension, clientSeed: 0 });
  const server = await startServer({
    config,
    modelHash: trainer.modelHash,
    generatorVersion: 1,
    paramCount: dimension,
    storePath: join(dir, 'store'),
    requireToken: false,
    minClients: extra.minClients,
  });
  try {
    return await body(server, dir);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function client(url: string, id: number, dimension = 16): { client: FederationClient; trainer: QuadraticToyTrainer; digests: Map<number, string> } {
  const trainer = new QuadraticToyTrainer({ dimension, clientSeed: id });
  const c = new FederationClient({ url, clientId: `client-${id}`, token: 'open', trainer, backoff: { initialMs: 20, maxMs: 200 } });
  const digests = new Map<number, string>();
  c.on('synced', ({ round, digest }) => digests.set(round, digest));
  return { client: c, trainer, digests };
}

test('three clients hold bit-identical replicas after every round', async () => {
  await withServer(base, {}, async (server) => {
    const mismatches: unknown[] = [];
    server.events.on('digestMismatch', (e) => mismatches.push(e));
    const clients = [1, 2, 3].map((i) => client(server.url, i));
    const results = await Promise.all(clients.map((c) => c.client.run()));
    assert.deepEqual(
      results.map((r) => r.finalRound),
      [4, 4, 4],
    );
    assert.equal(new Set(results.map((r) => r.digest)).size, 1);
    for (let r = 1; r <= 4; r++) {
      const ds = clients.map((c) => c.digests.get(r));
      assert.ok(
        ds.every((d) => d !== undefined && d === ds[0]),
        `round ${r} digests ${ds.join(',')}`,
      );
    }
    assert.equal(mismatches.length, 0);
    const state = await server.store.loadState();
    assert.equal(state?.round, 4);
    assert.ok(state && state.coefficients.some((c) => c !== 0) && state.coefficients.every((c) => Number.isInteger(c)));
    // The replica really moves toward the clients' targets.
    const first = await server.store.loadRound(1);
    const last = await server.store.loadRound(4);
    assert.ok(first && last && last.lossAfter < first.lossBefore, `loss ${first?.lossBefore} → ${last?.lossAfter}`);
  });
});

test('a client that misses rounds catches up to the same digest', async () => {
  await withServer({ ...base, rounds: 5, clientsPerRound: 2 }, { minClients: 2 }, async (server) => {
    const a = client(server.url, 1);
    const b = client(server.url, 2);
    const runs = [a.client.run(), b.client.run()];
    await new Promise<void>((resolve) => server.events.on('roundCommitted', (e) => e.round === 3 && resolve()));
    const late = client(server.url, 3);
    const lateRun = late.client.run();
    const [ra, rb, rl] = await Promise.all([...runs, lateRun]);
    assert.equal(rl.finalRound, 5);
    assert.equal(rl.digest, ra.digest);
    assert.equal(rb.digest, ra.digest);
    // The late client's first sync jumped several committed rounds in one change.
    const firstSynced = Math.min(...late.digests.keys());
    assert.ok(firstSynced >= 3, `late client first synced at ${firstSynced}`);
    assert.equal(late.digests.get(5), a.digests.get(5));
  });
});

test('a Pro round at K = 4096, tau = 200 costs at most 9,000 bytes per client on the wire', async () => {
  const config: FederationConfig = { ...base, k: 4096, tau: 200, sampling: 'pro', rounds: 4, clientsPerRound: 4 };
  await withServer(config, { dimension: 8 }, async (server) => {
    const perClient: number[] = [];
    server.events.on('roundCommitted', (e) => {
      for (const b of Object.values(e.bytes.perClient)) perClient.push(b.up + b.down);
    });
    const clients = [1, 2, 3, 4].map((i) => client(server.url, i, 8));
    const socketBefore = clients.map(() => 0);
    const results = await Promise.all(clients.map((c) => c.client.run()));
    assert.equal(new Set(results.map((r) => r.digest)).size, 1);
    assert.equal(perClient.length, 16);
    const max = Math.max(...perClient);
    console.log(`bytes per client per round (frames, both directions): max ${max}, all ${perClient.join(' ')}`);
    assert.ok(max <= 9000, `max ${max} B`);
    // The TCP counters agree: the whole session (handshake, hello, welcome, final sync included) per round.
    for (const [i, c] of clients.entries()) {
      const b = c.client.bytes();
      const perRound = (b.socketUp + b.socketDown - socketBefore[i]) / config.rounds;
      assert.ok(perRound <= 9000 + 600, `socket bytes per round ${perRound}`);
      assert.ok(b.socketUp >= b.frameUp && b.socketDown >= b.frameDown);
    }
  });
});
