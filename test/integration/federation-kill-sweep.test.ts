// 20 kill -9s of the server process at seeded points across a round's life (as it opens, while
// uploads arrive, as the last upload lands and the round commits, while restarted clients catch up),
// with real clients that reconnect after each restart. At the end no round is lost or doubled (the
// history is contiguous, each round committed once and C is the sum of the recorded changes), every
// replica is bit-identical without any resync, and the store passes its integrity check.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import type { FederationConfig } from '../../protocol';
import { parseServerProcessEvent, type ServerProcessSpec } from '../../contracts/server-process';
import { LevelFederationStore } from '../../federation/level-store';
import { FederationClient } from '../../federation/client/federation-client';
import { createRng } from '../../trainer/data/rng';
import { QuadraticToyTrainer } from '../../bench/toy-trainer';

const KILLS = 20;
const SEED = 20_261_130;

const config: FederationConfig = {
  k: 64,
  federationSeed: 5,
  epsilon: 1e-3,
  eta: 0.05,
  tau: 4,
  batchSize: 1,
  sampling: 'pro',
  weighting: 'examples',
  rounds: 50,
  clientsPerRound: 2,
  deadlineMs: 5000,
};

type Phase = 'round-open' | 'uploads-arriving' | 'commit' | 'catch-up';
const PHASES: readonly Phase[] = ['round-open', 'uploads-arriving', 'commit', 'catch-up'];

/** One server process from start to kill. */
interface Life {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  /** Rounds this process reported committed. */
  readonly committed: number[];
  openRound: number;
  uploadsInOpenRound: number;
  joins: number;
}

test(`${KILLS} kill -9s at seeded points of the round life cycle lose and double no round`, { timeout: 170_000 }, async () => {
  const rng = createRng(SEED);
  const plan = Array.from({ length: KILLS }, () => {
    const phase = PHASES[rng.nextInt(PHASES.length)];
    // Commits this process makes first (none before catch-up: that is the restart itself), and for the
    // commit phase a delay after the round's last upload is sent.
    return { phase, after: phase === 'catch-up' ? 0 : rng.nextInt(2), delayMs: rng.nextInt(4) };
  });
  const dir = mkdtempSync(join(tmpdir(), 'fedk-kills-'));
  const storePath = join(dir, 'store');
  const trainers = [1, 2, 3].map((i) => new QuadraticToyTrainer({ dimension: 8, clientSeed: i }));
  // Local rounds take a moment, so a round stays open between its first and its last upload.
  for (const t of trainers) {
    const train = t.trainRound.bind(t);
    t.trainRound = async (...a) => {
      await new Promise((r) => setTimeout(r, 15));
      return train(...a);
    };
  }
  const identity = Buffer.from(trainers[0].modelHash).toString('hex');
  let life: Life | null = null;
  let step = -1; // index into plan; KILLS: run to the end
  let port = 0;
  const killed: Phase[] = [];

  const kill = (l: Life): void => {
    if (life !== l || l.child.exitCode !== null) return;
    life = null;
    killed.push(plan[step].phase);
    l.child.kill('SIGKILL');
  };
  const armed = (l: Life): { phase: Phase; after: number; delayMs: number } | null =>
    life === l && step >= 0 && step < KILLS && l.committed.length >= plan[step].after ? plan[step] : null;

  function launch(): Promise<Life> {
    const spec: ServerProcessSpec = { config, model: { identity, parameters: 8 }, generatorVersion: 1, storePath, port, minClients: 2, requireToken: false };
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../../cli/run-server.ts'), JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const l: Life = { child, exited: new Promise((r) => child.once('exit', () => r())), committed: [], openRound: 0, uploadsInOpenRound: 0, joins: 0 };
    return new Promise((resolve, reject) => {
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        const e = parseServerProcessEvent(line);
        if (!e) return;
        if (e.event === 'failed') return reject(new Error(`server failed: ${e.message}`));
        if (e.event === 'listening') {
          port = e.port;
          life = l;
          return resolve(l);
        }
        if (e.event === 'roundCommitted') l.committed.push(e.round);
        if (e.event === 'roundStarted') {
          l.openRound = e.round;
          l.uploadsInOpenRound = 0;
          if (armed(l)?.phase === 'round-open') kill(l);
        }
        if (e.event === 'clientJoined' && ++l.joins === 1 && armed(l)?.phase === 'catch-up') kill(l);
      });
      child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening`)));
    });
  }

  try {
    life = await launch();
    const clients = trainers.map(
      (trainer, i) =>
        new FederationClient({
          url: `ws://127.0.0.1:${port}`,
          clientId: `c${i}`,
          token: '',
          trainer,
          backoff: { initialMs: 20, maxMs: 150, maxAttempts: 1000 },
        }),
    );
    const resyncs: unknown[] = [];
    const digests = new Map<number, Set<string>>();
    for (const c of clients) {
      c.on('resync', (e) => resyncs.push(e));
      c.on('serverError', (e) => resyncs.push(e));
      c.on('synced', ({ round, digest }) => digests.set(round, (digests.get(round) ?? new Set()).add(digest)));
      c.on('uploaded', ({ round }) => {
        const l = life;
        if (!l || round !== l.openRound) return;
        l.uploadsInOpenRound++;
        const a = armed(l);
        if (a?.phase === 'uploads-arriving' && l.uploadsInOpenRound === 1) kill(l);
        if (a?.phase === 'commit' && l.uploadsInOpenRound === config.clientsPerRound) setTimeout(() => kill(l), a.delayMs);
      });
    }
    step = 0;
    const runs = Promise.all(clients.map((c) => c.run()));
    const lives: Life[] = [life];
    const committedEvents: number[] = [];
    while (step < KILLS) {
      const current = lives[lives.length - 1];
      await current.exited;
      assert.ok(current.child.signalCode === 'SIGKILL', `kill ${step + 1}: the server was killed, not finished (${current.committed.length} commits)`);
      committedEvents.push(...current.committed);
      step++;
      lives.push(await launch());
    }
    const results = await runs;
    const last = lives[lives.length - 1];
    last.child.kill('SIGTERM');
    await last.exited;
    committedEvents.push(...last.committed);

    assert.deepEqual(
      killed,
      plan.map((p) => p.phase),
      'every planned kill landed in its phase',
    );
    assert.deepEqual(
      results.map((r) => r.finalRound),
      [config.rounds, config.rounds, config.rounds],
    );
    assert.equal(new Set(results.map((r) => r.digest)).size, 1, 'every replica ends bit-identical');
    for (const [round, seen] of digests) assert.equal(seen.size, 1, `round ${round}: the replicas agree`);
    assert.deepEqual(resyncs, [], 'no replica was refused or resynced');
    assert.equal(new Set(committedEvents).size, committedEvents.length, 'no round was committed twice');

    // Opened without --trust-store: the integrity check passes.
    const store = await LevelFederationStore.open(storePath);
    try {
      const state = await store.loadState();
      assert.equal(state?.round, config.rounds);
      const sum = new Float64Array(config.k);
      let previous = '';
      for (let r = 1; r <= config.rounds; r++) {
        const record = await store.loadRound(r);
        assert.ok(record, `round ${r} is in the store`);
        assert.equal(record.round, r);
        assert.ok(record.participants.length > 0 && record.committedAt >= previous, `round ${r} committed after round ${r - 1}`);
        previous = record.committedAt;
        record.change.forEach((c, j) => (sum[j] += c));
      }
      assert.equal(await store.loadRound(config.rounds + 1), null);
      assert.deepEqual(Array.from(sum), Array.from(state.coefficients), 'C is the sum of the recorded changes: each counted once');
    } finally {
      await store.close();
    }
  } finally {
    if (life) (life as Life).child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
