// A colluding minority against a real server on loopback, each case bounded in rounds and time.
// Digests: a state's reference digest needs a strict majority of the round's sampled clients (each a
// distinct token holder); colluders that report a forged digest first capture nothing, no honest client
// is sent to resync or stopped, and the honest replicas stay bit-identical. A token holder that never
// uploads is waited for at two deadlines, then rounds no longer wait for it until it uploads again.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { type FederationConfig } from '../../protocol';
import { encodeMessage } from '../../protocol/node/codec';
import { startServer, type FederationServer } from '../../federation/server';
import { createToken } from '../../federation/tokens';
import { FederationClient } from '../../federation/client/federation-client';
import { QuadraticToyTrainer } from '../../bench/toy-trainer';

const DIMENSION = 16;

const base: FederationConfig = {
  k: 64,
  federationSeed: 4242,
  epsilon: 1e-3,
  eta: 0.05,
  tau: 4,
  batchSize: 1,
  sampling: 'uniform',
  weighting: 'examples',
  rounds: 4,
  clientsPerRound: 6,
  deadlineMs: 5000,
};

async function withServer<T>(config: FederationConfig, minClients: number, body: (server: FederationServer) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-colluders-'));
  const model = new QuadraticToyTrainer({ dimension: DIMENSION, clientSeed: 0 });
  const server = await startServer({
    config,
    modelHash: model.modelHash,
    generatorVersion: 1,
    paramCount: DIMENSION,
    storePath: join(dir, 'store'),
    minClients,
  });
  try {
    return await body(server);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Member {
  readonly id: string;
  readonly client: FederationClient;
  readonly trainer: QuadraticToyTrainer;
  readonly resyncs: number[];
  /** Digest of the replica after each committed round it synced to. */
  readonly digests: Map<number, string>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A client with its own token. An honest one trains `delayMs` longer (so colluders report first); a
 * colluder reports `forged` as its replica's digest whatever it holds, and answers at once.
 */
async function member(server: FederationServer, id: string, o: { delayMs?: number; forged?: string }): Promise<Member> {
  const { token } = await createToken(server.store, id, id);
  const trainer = new QuadraticToyTrainer({ dimension: DIMENSION, clientSeed: id.length * 31 + id.charCodeAt(id.length - 1) });
  if (o.forged !== undefined) {
    const forged = o.forged;
    trainer.digest = async () => forged;
  }
  if (o.delayMs) {
    const train = trainer.trainRound.bind(trainer);
    trainer.trainRound = async (request, onStep) => {
      await sleep(o.delayMs as number);
      return train(request, onStep);
    };
  }
  const client = new FederationClient({ url: server.url, clientId: id, token, trainer, backoff: { initialMs: 20, maxMs: 200, maxAttempts: 20 } });
  const m: Member = { id, client, trainer, resyncs: [], digests: new Map() };
  client.on('resync', (e) => m.resyncs.push(e.round));
  client.on('synced', (e) => m.digests.set(e.round, e.digest));
  return m;
}

const FORGED = 'ab'.repeat(32);

test(
  '2 colluding token holders of 6 report a forged digest first: no honest client is sent to resync, honest replicas equal',
  { timeout: 60_000 },
  async () => {
    await withServer(base, 4, async (server) => {
      const mismatched: string[] = [];
      server.events.on('digestMismatch', (e) => mismatched.push(e.clientId));
      const colluders = [await member(server, 'mallory', { forged: FORGED }), await member(server, 'trudy', { forged: FORGED })];
      const honest = await Promise.all(['alice', 'bob', 'carol', 'dave'].map((id) => member(server, id, { delayMs: 150 })));
      // The colluders connect (and so are sampled and report) first.
      const colluderRuns = colluders.map((c) =>
        c.client.run().then(
          () => null,
          (err: unknown) => err as Error,
        ),
      );
      await sleep(100);
      const results = await Promise.all(honest.map((h) => h.client.run()));
      assert.deepEqual(
        results.map((r) => r.finalRound),
        [4, 4, 4, 4],
        'every honest client reaches the last round',
      );
      for (const h of honest) assert.deepEqual(h.resyncs, [], `${h.id} was not sent to resync`);
      const told = mismatched.filter((id) => !colluders.some((c) => c.id === id));
      assert.deepEqual(told, [], 'no honest client is told its replica differs');
      assert.equal(new Set(results.map((r) => r.digest)).size, 1, 'the honest replicas end bit-identical');
      for (let r = 1; r <= 4; r++) {
        const ds = honest.map((h) => h.digests.get(r)).filter((d) => d !== undefined);
        assert.equal(new Set(ds).size, 1, `round ${r}: the honest replicas agree`);
      }
      // The reference of every state the honest majority reported is theirs, never the forged one.
      for (let r = 0; r < 4; r++) {
        const reference = await server.store.loadDigest(r);
        assert.notEqual(reference, FORGED, `state ${r}'s reference is not the forged digest`);
      }
      for (const c of colluders) c.client.stop();
      await Promise.all(colluderRuns);
    });
  },
);

test('3 colluders of 6 (no strict majority either way): nobody is sent to resync and no reference is decided', { timeout: 60_000 }, async () => {
  await withServer({ ...base, rounds: 3 }, 6, async (server) => {
    const mismatched: string[] = [];
    server.events.on('digestMismatch', (e) => mismatched.push(e.clientId));
    const colluders = await Promise.all(['mallory', 'trudy', 'eve'].map((id) => member(server, id, { forged: FORGED })));
    const honest = await Promise.all(['alice', 'bob', 'carol'].map((id) => member(server, id, { delayMs: 150 })));
    const runs = [...colluders, ...honest].map((m) => m.client.run());
    const results = await Promise.all(runs);
    assert.deepEqual(
      results.map((r) => r.finalRound),
      [3, 3, 3, 3, 3, 3],
    );
    assert.deepEqual(mismatched, [], 'nobody is told its replica differs without a majority');
    for (const m of [...colluders, ...honest]) assert.deepEqual(m.resyncs, [], `${m.id} was not sent to resync`);
    assert.equal(new Set(results.slice(3).map((r) => r.digest)).size, 1, 'the honest replicas end bit-identical');
    for (let r = 0; r < 3; r++) assert.equal(await server.store.loadDigest(r), null, `state ${r} has no reference: 3 of 6 is no majority`);
  });
});

test('a token holder that never uploads is waited for twice, then rounds close without it until it uploads again', { timeout: 60_000 }, async () => {
  const deadlineMs = 1500;
  await withServer({ ...base, rounds: 6, clientsPerRound: 3, deadlineMs }, 3, async (server) => {
    const committedAt: number[] = [];
    server.events.on('roundCommitted', () => committedAt.push(Date.now()));
    const notAwaited: string[] = [];
    server.events.on('notAwaited', (e) => notAwaited.push(e.clientId));
    // A token holder that says HELLO, is sampled every round and never uploads (ws answers the pings).
    const { token } = await createToken(server.store, 'silent', 'silent');
    const silent = new WebSocket(server.url);
    const model = new QuadraticToyTrainer({ dimension: DIMENSION, clientSeed: 0 });
    await new Promise<void>((resolve, reject) => {
      silent.on('open', () => {
        silent.send(encodeMessage({ type: 'hello', clientId: 'silent', token, modelHash: model.modelHash, lastSyncedRound: 0, generatorVersion: 1 }));
        resolve();
      });
      silent.on('error', reject);
    });
    try {
      const honest = await Promise.all(['alice', 'bob'].map((id) => member(server, id, {})));
      const started = Date.now();
      const results = await Promise.all(honest.map((h) => h.client.run()));
      assert.deepEqual(
        results.map((r) => r.finalRound),
        [6, 6],
      );
      assert.equal(new Set(results.map((r) => r.digest)).size, 1, 'the honest replicas end bit-identical');
      // Rounds 1 and 2 wait out the deadline for the silent client; from round 3 on, nobody waits for it.
      assert.ok(committedAt[1] - started >= 2 * deadlineMs - 100, `the first two rounds waited out their deadlines (${committedAt[1] - started} ms)`);
      const later = committedAt.slice(2).map((t, i) => t - committedAt[i + 1]);
      assert.ok(
        later.every((ms) => ms < deadlineMs / 2),
        `rounds 3..6 closed without waiting: ${later.join(', ')} ms`,
      );
      assert.deepEqual(notAwaited, ['silent'], 'the client is named once');
    } finally {
      silent.close();
    }
  });
});
