// The real ZO engine in a real federation over loopback: every client's replica has the same digest
// after every round, equal to a replica rebuilt independently from the base model and the server's
// committed coefficients; a client that joins late catches up to the same digest; a round leaves the
// replica untouched and repeats exactly. The model is built here (not the bundled one).
import { strict as assert } from 'node:assert';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FederationConfig } from '../../protocol';
import { startServer, type FederationServer } from '../../federation/server';
import { EngineLocalTrainer } from '../../trainer/client/engine-trainer';
import { FederationClient } from '../../federation/client/federation-client';
import { loadDataset, type Dataset } from '../../trainer/data/dataset';
import { openEngine, type Engine } from '../../trainer/engine';
import { writeGpt2 } from '../../trainer/model';
import { bundledModelDir, packageRoot } from '../../trainer/paths';

const seqLen = 32;
const config: FederationConfig = {
  k: 128,
  federationSeed: 77,
  epsilon: 1e-3,
  eta: 2e-3,
  tau: 10,
  batchSize: 2,
  sampling: 'pro',
  weighting: 'examples',
  rounds: 3,
  clientsPerRound: 3,
  deadlineMs: 60_000,
};

let dir: string;
let modelDir: string;
let data: Dataset;
const engines: Engine[] = [];

async function engine(): Promise<Engine> {
  const e = await openEngine({ model: modelDir, threads: 1 });
  engines.push(e);
  return e;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedk-engine-'));
  modelDir = join(dir, 'model');
  mkdirSync(modelDir);
  // A small random GPT-2 over the bundled tokenizer's vocabulary: a shape nothing was tuned on.
  writeGpt2(
    { vocab: 4096, ctx: 64, dModel: 32, layers: 2, heads: 2, mlpRatio: 2, tiedEmbeddings: true, dtype: 'float32', seed: 5 },
    join(modelDir, 'model.onnx'),
  );
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(bundledModelDir(), f), join(modelDir, f));
  const probe = await engine();
  data = await loadDataset(join(packageRoot(), 'test', 'fixtures', 'data', 'code'), { tokenizer: probe.tokenizer, seqLen, heldOutFraction: 0.3 });
});

after(async () => {
  for (const e of engines) await e.close();
  rmSync(dir, { recursive: true, force: true });
});

async function withServer<T>(c: FederationConfig, minClients: number, paramCount: number, body: (server: FederationServer) => Promise<T>): Promise<T> {
  const probe = engines[0];
  const server = await startServer({
    config: c,
    modelHash: Buffer.from(probe.model.identity, 'hex'),
    generatorVersion: 1,
    paramCount,
    storePath: join(dir, `store-${Date.now()}-${Math.random()}`),
    requireToken: false,
    minClients,
  });
  try {
    return await body(server);
  } finally {
    await server.close();
  }
}

async function engineClient(url: string, id: number): Promise<{ client: FederationClient; trainer: EngineLocalTrainer; digests: Map<number, string> }> {
  const e = await engine();
  const trainer = new EngineLocalTrainer(e, data, { batchSize: 2, seqLen, clientSeed: id, heldOutExamples: 4 });
  const client = new FederationClient({ url, clientId: `engine-${id}`, token: 'local', trainer, backoff: { initialMs: 20, maxMs: 200 } });
  const digests = new Map<number, string>();
  client.on('synced', ({ round, digest }) => digests.set(round, digest));
  return { client, trainer, digests };
}

/** Base model + the server's committed C at `round`, built from scratch by a fresh engine. */
async function rebuiltDigest(server: FederationServer, round: number, c: FederationConfig = config): Promise<string> {
  const fresh = await engine();
  fresh.params.setGenerator(c.generator ?? 'iid');
  fresh.params.setShape(c.shape ?? 'isotropic');
  const total = new Float64Array(config.k);
  for (let r = 1; r <= round; r++) {
    const record = await server.store.loadRound(r);
    assert.ok(record, `round ${r} is committed`);
    record.change.forEach((c, j) => (total[j] += c));
  }
  const seeds = [...total.keys()].filter((j) => total[j] !== 0);
  fresh.params.applyCoefficientDelta(
    config.federationSeed,
    seeds,
    seeds.map((j) => total[j]),
    config.eta,
  );
  return fresh.params.digest();
}

test('three engine clients hold identical replicas after every round, equal to a rebuild from the server state', async () => {
  await withServer(config, 3, engines[0].params.parameterCount, async (server) => {
    const mismatches: unknown[] = [];
    server.events.on('digestMismatch', (e) => mismatches.push(e));
    const clients = await Promise.all([1, 2, 3].map((i) => engineClient(server.url, i)));
    const results = await Promise.all(clients.map((c) => c.client.run()));
    assert.deepEqual(
      results.map((r) => r.finalRound),
      [3, 3, 3],
    );
    for (let r = 1; r <= config.rounds; r++) {
      const ds = clients.map((c) => c.digests.get(r));
      assert.ok(
        ds.every((d) => d !== undefined && d === ds[0]),
        `round ${r}: ${ds.join(' ')}`,
      );
      assert.equal(ds[0], await rebuiltDigest(server, r), `round ${r}: client replicas equal the rebuilt replica`);
    }
    assert.equal(mismatches.length, 0);
    const state = await server.store.loadState();
    assert.ok(state && state.coefficients.some((c) => c !== 0), 'the federation moved the model');
  });
});

test('a rank-1 federation: identical replicas every round, equal to a rebuild under rank-1, and a lower held-out loss', async () => {
  const rank1: FederationConfig = { ...config, generator: 'rank1', shape: 'tensor-rms' };
  await withServer(rank1, 3, engines[0].params.parameterCount, async (server) => {
    const clients = await Promise.all([1, 2, 3].map((i) => engineClient(server.url, i)));
    const base = await clients[0].trainer.heldOutLoss();
    const results = await Promise.all(clients.map((c) => c.client.run()));
    assert.deepEqual(
      results.map((r) => r.finalRound),
      [3, 3, 3],
    );
    for (let r = 1; r <= rank1.rounds; r++) {
      const ds = clients.map((c) => c.digests.get(r));
      assert.ok(
        ds.every((d) => d !== undefined && d === ds[0]),
        `round ${r}: ${ds.join(' ')}`,
      );
      assert.equal(ds[0], await rebuiltDigest(server, r, rank1), `round ${r}: client replicas equal the rebuilt rank-1 replica`);
    }
    assert.notEqual(clients[0].digests.get(rank1.rounds), await rebuiltDigest(server, rank1.rounds), 'the iid rebuild of the same coefficients differs');
    const trained = await clients[0].trainer.heldOutLoss();
    assert.ok(trained.loss < base.loss, `held-out loss ${base.loss} → ${trained.loss}`);
  });
});

test("an engine client whose replica drifted rebuilds it from the model file, rejoins once and ends on the federation's replica", async () => {
  const c = { ...config, rounds: 4 };
  await withServer(c, 3, engines[0].params.parameterCount, async (server) => {
    const mismatches: string[] = [];
    server.events.on('digestMismatch', (e) => mismatches.push(e.clientId));
    const clients = await Promise.all([1, 2, 3].map((i) => engineClient(server.url, i)));
    const drifting = engines[engines.length - 1];
    let drifted = false;
    clients[2].client.on('synced', ({ round }) => {
      if (round !== 1 || drifted) return;
      drifted = true;
      drifting.params.applyCoefficientDelta(c.federationSeed, [3], [5000], c.eta); // a change no one else applied
    });
    const resyncs: number[] = [];
    clients[2].client.on('resync', (e) => resyncs.push(e.round));
    const results = await Promise.all(clients.map((x) => x.client.run()));
    assert.deepEqual(
      results.map((r) => r.finalRound),
      [4, 4, 4],
    );
    assert.deepEqual(mismatches, ['engine-3']);
    assert.equal(resyncs.length, 1);
    assert.equal(new Set(results.map((r) => r.digest)).size, 1, 'bit-identical after the resync');
    const total = new Float64Array(c.k);
    for (let r = 1; r <= 4; r++) (await server.store.loadRound(r))?.change.forEach((x, j) => (total[j] += x));
    assert.deepEqual(
      new Map([...drifting.params.appliedCoefficients()].sort((a, b) => a[0] - b[0])),
      new Map([...total.keys()].filter((j) => total[j] !== 0).map((j) => [j, total[j]])),
    );
  });
});

test('a client that joins after two rounds catches up to the same digest', async () => {
  const c: FederationConfig = { ...config, rounds: 3, clientsPerRound: 2, sampling: 'uniform' };
  await withServer(c, 2, engines[0].params.parameterCount, async (server) => {
    const a = await engineClient(server.url, 11);
    const b = await engineClient(server.url, 12);
    const runs = [a.client.run(), b.client.run()];
    await new Promise<void>((resolve) => server.events.on('roundCommitted', (e) => e.round === 2 && resolve()));
    const late = await engineClient(server.url, 13);
    const [ra, rb, rl] = await Promise.all([...runs, late.client.run()]);
    assert.equal(rl.finalRound, 3);
    assert.equal(rl.digest, ra.digest);
    assert.equal(rb.digest, ra.digest);
    assert.ok(Math.min(...late.digests.keys()) >= 2, 'the late client skipped straight to a committed round');
    assert.equal(ra.digest, await rebuiltDigest(server, 3));
  });
});

test('a round leaves the replica unchanged and repeats exactly when retried', async () => {
  const e = await engine();
  const trainer = new EngineLocalTrainer(e, data, { batchSize: 2, seqLen, clientSeed: 4, heldOutExamples: 4 });
  await trainer.applyCoefficientDelta({ indices: Uint32Array.from([3, 9]), values: Float64Array.from([65536, -131072]) }, config);
  const replica = await trainer.digest();
  const steps: number[] = [];
  const request = { round: 2, steps: 6, probabilities: null, config };
  const first = await trainer.trainRound(request, (p) => steps.push(p.step));
  assert.equal(await trainer.digest(), replica);
  const again = await trainer.trainRound(request);
  assert.equal(await trainer.digest(), replica);
  assert.deepEqual(again.pairs, first.pairs);
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6]);
  assert.equal(first.pairs.length, 6);
  assert.ok(first.lossBefore.count > 0 && first.lossAfter.count > 0);
  assert.notEqual(first.lossAfter.sum, first.lossBefore.sum, 'local steps changed the working weights');
  const held = await trainer.heldOutLoss();
  assert.ok(Math.abs(held.loss * held.tokens - first.lossBefore.sum) < 1e-6 * first.lossBefore.sum, 'heldOutLoss measures the replica');
});

test('a client whose local training fails stops with that error instead of reconnecting forever', async () => {
  const e = await engine();
  const trainer = new EngineLocalTrainer(e, data, { batchSize: 2, seqLen, clientSeed: 21 });
  trainer.trainRound = () => Promise.reject(new Error('out of memory in the forward pass'));
  await withServer({ ...config, clientsPerRound: 1 }, 1, e.params.parameterCount, async (server) => {
    const joins: string[] = [];
    server.events.on('clientJoined', (j) => joins.push(j.clientId));
    const client = new FederationClient({ url: server.url, clientId: 'broken', token: 'local', trainer, backoff: { initialMs: 10, maxMs: 20 } });
    await assert.rejects(client.run(), /local training failed: out of memory in the forward pass/);
    assert.equal(joins.length, 1);
  });
});
