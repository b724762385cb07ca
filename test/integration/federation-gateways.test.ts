// Three gateway processes on one PostgreSQL database serve six clients behind a TCP balancer. Mid-round,
// the coordinator is killed with SIGKILL, then another gateway, then PostgreSQL restarts. What must hold:
// every round from 1 to the last is committed exactly once, the committed coefficients are the sum of the
// recorded changes, every client reconnects (to whichever gateway) and finishes, and all replicas end
// identical.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { QuadraticToyTrainer } from '../../bench/toy-trainer';
import { parseServerProcessEvent, type ServerProcessSpec } from '../../contracts/server-process';
import { COORDINATOR_LOCK, LOCK_CLASS } from '../../federation/gateway/leader';
import type { FederationConfig } from '../../protocol';
import { FederationClient } from '../../federation/client/federation-client';
import { startPostgres } from '../helpers/postgres';
import { TcpBalancer } from '../helpers/tcp-balancer';

// Enough rounds that the three faults land before the end (a round takes a few hundred ms here).
const ROUNDS = 30;
const config: FederationConfig = {
  k: 128,
  federationSeed: 31,
  epsilon: 1e-3,
  eta: 0.05,
  tau: 10,
  batchSize: 1,
  sampling: 'pro',
  weighting: 'examples',
  rounds: ROUNDS,
  clientsPerRound: 3,
  deadlineMs: 4000,
};

interface Gateway {
  readonly child: ChildProcess;
  readonly port: number;
  readonly committed: number[];
}

/** Gateways that ended without being killed by the test (an uncaught error, say). */
const crashed: string[] = [];
const killedByTest = new Set<ChildProcess>();

function launch(storeUrl: string, password: string, identity: string): Promise<Gateway> {
  const spec: ServerProcessSpec = {
    config,
    model: { identity, parameters: 8 },
    generatorVersion: 1,
    storePath: 'unused',
    storeUrl,
    port: 0,
    minClients: 3,
    requireToken: false,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../../cli/run-server.ts'), JSON.stringify(spec)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, PGPASSWORD: password },
  });
  const committed: number[] = [];
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const e = parseServerProcessEvent(line);
      if (e?.event === 'listening') resolve({ child, port: e.port, committed });
      if (e?.event === 'failed') reject(new Error(`gateway failed: ${e.message}`));
      if (e?.event === 'roundCommitted') committed.push(e.round);
    });
    child.once('exit', (code, signal) => {
      if (!killedByTest.has(child)) crashed.push(`gateway ${child.pid} exited with ${code ?? signal}`);
      reject(new Error(`gateway exited with ${code} before listening`));
    });
  });
}

function until(pred: () => boolean, what: string, ms = 30_000): Promise<void> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const t = setInterval(() => {
      if (pred()) {
        clearInterval(t);
        resolve();
      } else if (Date.now() - started > ms) {
        clearInterval(t);
        reject(new Error(`timed out waiting for ${what}`));
      }
    }, 5);
  });
}

test(
  '3 gateways, 6 clients: kill -9 of the coordinator and of another gateway, and a PostgreSQL restart, mid-round, lose and double no round',
  { timeout: 110_000 },
  async () => {
    const server = await startPostgres();
    const balancer = await TcpBalancer.start();
    const gateways: Gateway[] = [];
    let db: pg.Client | null = null;
    try {
      const url = await server.createDatabase('gateways');
      const trainers = Array.from({ length: 6 }, (_, i) => new QuadraticToyTrainer({ dimension: 8, clientSeed: i + 1 }));
      // Most clients take 120 ms per round, so a round stays open a while after its first upload: a
      // fault then lands inside a round.
      for (const t of trainers.slice(1)) {
        const train = t.trainRound.bind(t);
        t.trainRound = async (...a) => {
          await new Promise((r) => setTimeout(r, 120));
          return train(...a);
        };
      }
      const hash = Buffer.from(trainers[0].modelHash).toString('hex');
      const start = async (): Promise<Gateway> => {
        const g = await launch(url, server.password, hash);
        gateways.push(g);
        balancer.add(g.port);
        return g;
      };
      // The first creates the tables and coordinates; then two more.
      await start();
      await Promise.all([start(), start()]);

      db = new pg.Client({ ...parseIntoClientConfig(url), password: server.password });
      await db.connect();
      const dbClient = db;
      const committedRound = async (): Promise<number> => (await dbClient.query<{ round: number }>('SELECT round FROM fedkseed_state')).rows[0]?.round ?? 0;
      /** The gateway process holding the coordinator's lock, from its session's application name. */
      const coordinatorPid = async (): Promise<number | null> => {
        const { rows } = await dbClient.query<{ name: string }>(
          `SELECT a.application_name AS name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.granted`,
          [LOCK_CLASS, COORDINATOR_LOCK],
        );
        const m = /^fedkseed-gateway-(\d+)$/.exec(rows[0]?.name ?? '');
        return m ? Number(m[1]) : null;
      };

      const url0 = `ws://127.0.0.1:${balancer.port}`;
      const uploads: number[] = [];
      const clients = trainers.map(
        (trainer, i) => new FederationClient({ url: url0, clientId: `c${i}`, token: '', trainer, backoff: { initialMs: 50, maxMs: 400, maxAttempts: 400 } }),
      );
      for (const c of clients) c.on('uploaded', ({ round }) => uploads.push(round));
      const runs = clients.map((c) => c.run());

      /** Resolves once a round has an upload and no commit yet (read from the database). */
      const midRound = async (): Promise<number> => {
        for (;;) {
          const committed = await committedRound();
          if (uploads.some((r) => r > committed)) return committed;
          if (committed >= ROUNDS) throw new Error('the federation finished before the fault');
          await new Promise((r) => setTimeout(r, 5));
        }
      };
      const kill = (g: Gateway): void => {
        killedByTest.add(g.child);
        balancer.remove(g.port);
        g.child.kill('SIGKILL');
        gateways.splice(gateways.indexOf(g), 1);
      };

      // 1: the coordinator, mid-round.
      await until(() => gateways.some((g) => g.committed.length >= 2), 'two commits');
      await midRound();
      const coordinator = await coordinatorPid();
      const first = gateways.find((g) => g.child.pid === coordinator);
      assert.ok(first, 'one of the gateways holds the coordinator lock');
      kill(first);
      const afterFirst = await committedRound();
      await start();

      // 2: another gateway (not the coordinator), mid-round, once a round committed since.
      await until(() => gateways.some((g) => Math.max(0, ...g.committed) > afterFirst + 1), 'a commit after the first kill');
      await midRound();
      const now = await coordinatorPid();
      const second = gateways.find((g) => g.child.pid !== now);
      assert.ok(second);
      kill(second);
      const afterSecond = await committedRound();
      await start();

      // 3: PostgreSQL restarts mid-round: every session and pooled connection is cut.
      await until(() => gateways.some((g) => Math.max(0, ...g.committed) > afterSecond + 1), 'a commit after the second kill');
      const inFlight = await midRound();
      await db.end();
      db = null;
      assert.ok(inFlight < ROUNDS);
      server.restart();

      const results = await Promise.all(runs);
      assert.deepEqual(
        results.map((r) => r.finalRound),
        clients.map(() => ROUNDS),
      );
      assert.equal(new Set(results.map((r) => r.digest)).size, 1, 'every replica is identical');
      assert.deepEqual(crashed, [], 'no gateway ended but those the test killed');

      db = new pg.Client({ ...parseIntoClientConfig(url), password: server.password });
      await db.connect();
      const state = await db.query<{ round: number; coefficients: Buffer }>('SELECT round, coefficients FROM fedkseed_state');
      assert.equal(state.rows[0].round, ROUNDS);
      const rounds = await db.query<{ round: number; change: Buffer }>('SELECT round, change FROM fedkseed_rounds ORDER BY round');
      assert.deepEqual(
        rounds.rows.map((r) => r.round),
        Array.from({ length: ROUNDS }, (_, i) => i + 1),
        'every round committed once',
      );
      const sum = new Float64Array(config.k);
      for (const r of rounds.rows) new Float64Array(new Uint8Array(r.change).buffer).forEach((c, j) => (sum[j] += c));
      assert.deepEqual(
        Array.from(sum),
        Array.from(new Float64Array(new Uint8Array(state.rows[0].coefficients).buffer)),
        'the coefficients are the sum of the committed changes',
      );
      // Each live gateway reports every round committed exactly once, whichever committed it.
      for (const g of gateways) {
        await until(() => g.committed.includes(ROUNDS), 'the last commit on every gateway', 10_000);
        assert.equal(new Set(g.committed).size, g.committed.length, 'no round reported twice');
      }
    } finally {
      await db?.end().catch(() => undefined);
      for (const g of gateways) {
        killedByTest.add(g.child);
        g.child.kill('SIGKILL');
      }
      await balancer.close();
      server.stop();
    }
  },
);
