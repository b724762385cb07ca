// A client whose replica drifted from the federation's (a change applied twice, a flipped value) is told
// DigestMismatch by the quorum; it rebuilds its replica from the base weights and the server's full C,
// rejoins once, and ends bit-identical to the others. A replica that still disagrees after the rebuild
// stops the client with an error naming the problem.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, type FederationConfig } from '../../protocol';
import { startServer, type FederationServer } from '../../federation/server';
import { FederationClient, FederationClientError } from '../../federation/client/federation-client';
import { QuadraticToyTrainer } from '../../bench/toy-trainer';

const config: FederationConfig = {
  k: 64,
  federationSeed: 99,
  epsilon: 1e-3,
  eta: 0.05,
  tau: 5,
  batchSize: 1,
  sampling: 'uniform',
  weighting: 'examples',
  rounds: 6,
  clientsPerRound: 3,
  deadlineMs: 5000,
};

async function withServer<T>(minClients: number, body: (server: FederationServer) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-resync-'));
  const trainer = new QuadraticToyTrainer({ dimension: 16, clientSeed: 0 });
  const server = await startServer({
    config,
    modelHash: trainer.modelHash,
    generatorVersion: 1,
    paramCount: 16,
    storePath: join(dir, 'store'),
    requireToken: false,
    minClients,
  });
  try {
    return await body(server);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function clients(url: string): { client: FederationClient; trainer: QuadraticToyTrainer }[] {
  return [1, 2, 3].map((i) => {
    const trainer = new QuadraticToyTrainer({ dimension: 16, clientSeed: i });
    return { trainer, client: new FederationClient({ url, clientId: `c${i}`, token: 'open', trainer, backoff: { initialMs: 20, maxMs: 200 } }) };
  });
}

/** Once the client holds round `round`, its replica is moved off the federation's by an extra change no one else applied. */
function corruptAfter(c: { client: FederationClient; trainer: QuadraticToyTrainer }, round: number): void {
  let done = false;
  c.client.on('synced', (e) => {
    if (done || e.round !== round) return;
    done = true;
    void c.trainer.applyCoefficientDelta({ indices: Uint32Array.of(5), values: Float64Array.of(1) }, config);
  });
}

test('a client whose replica drifted is resynced once from the base weights and ends bit-identical', async () => {
  await withServer(3, async (server) => {
    const mismatches: string[] = [];
    server.events.on('digestMismatch', (e) => mismatches.push(e.clientId));
    const all = clients(server.url);
    corruptAfter(all[2], 2);
    const resyncs: number[] = [];
    all[2].client.on('resync', (e) => resyncs.push(e.round));
    const results = await Promise.all(all.map((c) => c.client.run()));
    assert.deepEqual(
      results.map((r) => r.finalRound),
      [6, 6, 6],
    );
    assert.deepEqual(mismatches, ['c3'], 'the drifted replica is reported once, then agrees');
    assert.equal(new Set(results.map((r) => r.digest)).size, 1, 'every replica ends bit-identical');
    // The first report of the drifted replica is round 3's; the quorum on it may be decided after round 4
    // committed (the honest reports of round 3 ride on round 4's uploads), so c3 holds round 3 or 4 when told.
    assert.equal(resyncs.length, 1, `one resync: ${resyncs.join(', ')}`);
    assert.ok(resyncs[0] === 3 || resyncs[0] === 4, `the resync came at round ${resyncs[0]}`);
  });
});

test('a replica that still disagrees after its rebuild stops the client with an error naming the problem', async () => {
  await withServer(2, async (server) => {
    const all = clients(server.url);
    // A client whose every replica differs (another base model under the same identity, say).
    const broken = all[2].trainer;
    const digest = broken.digest.bind(broken);
    broken.digest = async () => `ff${(await digest()).slice(2)}`;
    const runs = all.map((c) => c.client.run());
    await assert.rejects(runs[2], (err: unknown) => {
      assert.ok(err instanceof FederationClientError);
      assert.equal(err.code, ErrorCode.DigestMismatch);
      assert.match(err.message, /rebuilt from the base model/);
      return true;
    });
    const rest = await Promise.all(runs.slice(0, 2));
    assert.equal(new Set(rest.map((r) => r.digest)).size, 1);
  });
});
