// Client selection no one can predict before the round, against real servers on loopback: the sample is
// drawn with a key derived from the server's secret (32 random bytes kept in its store, never sent), so
// two federations with the same public configuration and clients sample differently; each round's record
// keeps its key, so the sample it drew is reproduced from the record; a restarted server keeps its secret.
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FederationConfig } from '../../protocol';
import { LevelFederationStore } from '../../federation/level-store';
import { sampleClients, sampleClientsWithKey, samplingKey } from '../../federation/sampling';
import { startServer } from '../../federation/server';
import { createToken } from '../../federation/tokens';
import { FederationClient } from '../../federation/client/federation-client';
import { QuadraticToyTrainer } from '../../bench/toy-trainer';

const DIMENSION = 16;
const config: FederationConfig = {
  k: 64,
  federationSeed: 777,
  epsilon: 1e-3,
  eta: 0.05,
  tau: 4,
  batchSize: 1,
  sampling: 'uniform',
  weighting: 'examples',
  rounds: 6,
  clientsPerRound: 2,
  deadlineMs: 5000,
};
const ids = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];

interface Run {
  /** Each round's sampled clients (sorted), from roundStarted. */
  readonly samples: string[][];
  /** Each committed round's recorded sampling key (hex). */
  readonly keys: (string | undefined)[];
  readonly secret: Uint8Array;
  readonly logText: string;
}

async function federate(dir: string): Promise<Run> {
  const model = new QuadraticToyTrainer({ dimension: DIMENSION, clientSeed: 0 });
  mkdirSync(dir, { recursive: true });
  const log = new PassThrough();
  const lines: Buffer[] = [];
  log.on('data', (b: Buffer) => lines.push(b));
  const server = await startServer({
    config,
    modelHash: model.modelHash,
    generatorVersion: 1,
    paramCount: DIMENSION,
    storePath: join(dir, 'store'),
    minClients: ids.length,
    log,
  });
  const samples: string[][] = [];
  server.events.on('roundStarted', (e) => (samples[e.round - 1] = [...e.clients].sort()));
  try {
    const clients = await Promise.all(
      ids.map(async (id, n) => {
        const { token } = await createToken(server.store, id, id);
        return new FederationClient({
          url: server.url,
          clientId: id,
          token,
          trainer: new QuadraticToyTrainer({ dimension: DIMENSION, clientSeed: n + 1 }),
          backoff: { initialMs: 20, maxMs: 200, maxAttempts: 20 },
        });
      }),
    );
    const results = await Promise.all(clients.map((c) => c.run()));
    assert.deepEqual(
      results.map((r) => r.finalRound),
      ids.map(() => config.rounds),
    );
    assert.equal(new Set(results.map((r) => r.digest)).size, 1, 'the replicas end bit-identical');
    const keys: (string | undefined)[] = [];
    for (let r = 1; r <= config.rounds; r++) keys.push((await server.store.loadRound(r))?.after?.sampling);
    const secret = await server.store.loadSecret();
    return { samples, keys, secret, logText: Buffer.concat(lines).toString('utf8') };
  } finally {
    await server.close();
  }
}

test(
  'client selection is not predictable from the public configuration: two federations sample differently, each record reproduces its sample, the secret is kept and never shown',
  { timeout: 90_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedk-selection-'));
    try {
      const a = await federate(join(dir, 'a'));
      const b = await federate(join(dir, 'b'));
      // What anyone could compute from the public seed alone.
      const predicted = Array.from({ length: config.rounds }, (_, i) => sampleClients(ids, config.clientsPerRound, config.federationSeed, i + 1, 0).sort());
      const same = (x: string[][], y: string[][]): number => x.filter((s, i) => s.join() === y[i].join()).length;
      // 15 pairs of 6: with keys of their own, all 6 rounds alike by chance has probability 15⁻⁶.
      assert.ok(same(a.samples, b.samples) < config.rounds, `two federations with the same configuration sampled alike: ${JSON.stringify(a.samples)}`);
      assert.ok(same(a.samples, predicted) < config.rounds, 'the public seed does not predict the sample');
      for (const run of [a, b]) {
        assert.equal(run.secret.length, 32);
        run.keys.forEach((key, i) => {
          assert.ok(key && /^[0-9a-f]{64}$/.test(key), `round ${i + 1} records its sampling key`);
          assert.equal(key, samplingKey(run.secret, i + 1, 0).toString('hex'), `round ${i + 1}: the key is the secret's for (round, attempt)`);
          assert.deepEqual(
            sampleClientsWithKey(ids, config.clientsPerRound, Buffer.from(key, 'hex')).sort(),
            run.samples[i],
            `round ${i + 1}: the record reproduces its sample`,
          );
        });
      }
      // The secret never reaches the log (which holds every event of the run).
      const logText = a.logText;
      assert.ok(logText.includes('round_committed'), 'the log holds the run');
      const secretHex = Buffer.from(a.secret).toString('hex');
      assert.ok(!logText.includes(secretHex) && !logText.includes(Buffer.from(a.secret).toString('base64')), 'the secret is not in the log');
      // A restarted server keeps its secret: the store holds it.
      const store = await LevelFederationStore.open(join(dir, 'a', 'store'));
      try {
        assert.deepEqual(Buffer.from(await store.loadSecret()), Buffer.from(a.secret));
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
