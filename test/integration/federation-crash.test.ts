// kill -9 of the server process between and during rounds: after a restart on the same store no
// committed round is lost, the in-flight round is rerun, and every client ends on the same digest.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createInterface } from 'node:readline';
import type { FederationConfig } from '../../protocol';
import { parseServerProcessEvent, type ServerProcessSpec } from '../../contracts/server-process';
import { LevelFederationStore } from '../../federation/level-store';
import { FederationClient } from '../../federation/client/federation-client';
import { QuadraticToyTrainer } from '../../bench/toy-trainer';

const config: FederationConfig = {
  k: 128,
  federationSeed: 77,
  epsilon: 1e-3,
  eta: 0.05,
  tau: 10,
  batchSize: 1,
  sampling: 'pro',
  weighting: 'examples',
  rounds: 12,
  clientsPerRound: 2,
  deadlineMs: 3000,
};

interface Running {
  readonly child: ChildProcess;
  readonly url: string;
  readonly committed: number[];
}

function launch(storePath: string, port: number, identity: string): Promise<Running> {
  const spec: ServerProcessSpec = { config, model: { identity, parameters: 8 }, generatorVersion: 1, storePath, port, minClients: 2, requireToken: false };
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../../cli/run-server.ts'), JSON.stringify(spec)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const committed: number[] = [];
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const e = parseServerProcessEvent(line);
      if (e?.event === 'listening') resolve({ child, url: e.url, committed });
      if (e?.event === 'failed') reject(new Error(`server failed: ${e.message}`));
      if (e?.event === 'roundCommitted') committed.push(e.round);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening`)));
  });
}

function until(pred: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const t = setInterval(() => pred() && (clearInterval(t), resolve()), 2);
  });
}

test('kill -9 between and during rounds loses no committed round', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-crash-'));
  const storePath = join(dir, 'store');
  const trainers = [1, 2, 3].map((i) => new QuadraticToyTrainer({ dimension: 8, clientSeed: i }));
  // Clients 2 and 3 take 150 ms per round, so every round (2 of 3 clients sampled) stays open at least
  // that long after its first upload: a kill then lands inside a round, not between two.
  for (const t of trainers.slice(1)) {
    const train = t.trainRound.bind(t);
    t.trainRound = async (...a) => {
      await new Promise((r) => setTimeout(r, 150));
      return train(...a);
    };
  }
  const hash = Buffer.from(trainers[0].modelHash).toString('hex');
  try {
    let server = await launch(storePath, 0, hash);
    const port = Number(new URL(server.url).port);
    const clients = trainers.map(
      (trainer, i) =>
        new FederationClient({ url: server.url, clientId: `c${i}`, token: '', trainer, backoff: { initialMs: 50, maxMs: 300, maxAttempts: 200 } }),
    );
    const runs = clients.map((c) => c.run());
    const uploads: number[] = [];
    for (const c of clients) c.on('uploaded', ({ round }) => uploads.push(round));

    // 1: right after a commit. 2: while a round is in flight (an upload has arrived at no commit yet).
    await until(() => server.committed.length >= 3);
    server.child.kill('SIGKILL');
    const seenBeforeFirst = Math.max(...server.committed);
    server = await launch(storePath, port, hash);
    // Kill once a round has an upload but no commit yet: mid-round.
    const inFlight = (): boolean => {
      const committed = Math.max(seenBeforeFirst, ...server.committed);
      return server.committed.length >= 1 && uploads.some((r) => r > committed);
    };
    await until(inFlight);
    server.child.kill('SIGKILL');
    const seenBeforeSecond = Math.max(seenBeforeFirst, ...server.committed);
    const killedDuring = seenBeforeSecond + 1;
    server = await launch(storePath, port, hash);

    const results = await Promise.all(runs);
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    assert.deepEqual(
      results.map((r) => r.finalRound),
      [12, 12, 12],
    );
    assert.equal(new Set(results.map((r) => r.digest)).size, 1);

    const store = await LevelFederationStore.open(storePath);
    try {
      const state = await store.loadState();
      assert.equal(state?.round, 12);
      for (let r = 1; r <= 12; r++) assert.ok(await store.loadRound(r), `round ${r} is in the store`);
      assert.ok(seenBeforeSecond >= 3);
      // The round killed mid-flight was rerun and committed once, after the restart.
      assert.ok(await store.loadRound(killedDuring), `round ${killedDuring} (in flight at the kill) was committed after the restart`);
      // The committed coefficients equal the sum of the recorded changes.
      const sum = new Float64Array(config.k);
      for (let r = 1; r <= 12; r++) (await store.loadRound(r))?.change.forEach((c, j) => (sum[j] += c));
      assert.deepEqual(Array.from(sum), Array.from(state?.coefficients ?? []));
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
