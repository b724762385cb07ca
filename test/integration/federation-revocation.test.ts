// A token revoked while the server runs ends the sessions it admitted within a second, with the
// embedded store (the server holds the LevelDB folder: `fedkseed tokens revoke` asks it through a
// request file) and with PostgreSQL (NOTIFY reaches every gateway); the revoked client uploads nothing
// more, and its client id stays reserved: an unbound token cannot take it over.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, type FederationConfig } from '../../protocol';
import { PgFederationStore } from '../../federation/pg-store';
import { startServer, type FederationServer } from '../../federation/server';
import { createToken, listTokens, revokeToken } from '../../federation/tokens';
import { FederationClient } from '../../federation/client/federation-client';
import { QuadraticToyTrainer } from '../../bench/toy-trainer';
import { startPostgres } from '../helpers/postgres';

const CLI = join(import.meta.dirname, '../../cli/main.ts');
const DIMENSION = 8;

const config: FederationConfig = {
  k: 64,
  federationSeed: 77,
  epsilon: 1e-3,
  eta: 0.05,
  tau: 4,
  batchSize: 1,
  sampling: 'uniform',
  weighting: 'examples',
  rounds: 100_000,
  clientsPerRound: 2,
  deadlineMs: 3000,
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Member {
  readonly client: FederationClient;
  readonly run: Promise<Error | null>;
  /** When the server closed the connection, and with which ERROR code before it. */
  closedAt: number | null;
  readonly errors: number[];
}

/** A client that trains 20 ms a round (so rounds do not race ahead), running until stopped or refused. */
function member(server: FederationServer, id: string, token: string): Member {
  const trainer = new QuadraticToyTrainer({ dimension: DIMENSION, clientSeed: id.length });
  const train = trainer.trainRound.bind(trainer);
  trainer.trainRound = async (request, onStep) => {
    await sleep(20);
    return train(request, onStep);
  };
  const client = new FederationClient({ url: server.url, clientId: id, token, trainer, backoff: { initialMs: 20, maxMs: 200, maxAttempts: 3 } });
  const m: Member = {
    client,
    closedAt: null,
    errors: [],
    run: client.run().then(
      () => null,
      (err: unknown) => err as Error,
    ),
  };
  client.on('serverError', (e) => {
    m.errors.push(e.code);
    // A fatal ERROR comes with the close (the client ends at it, with no disconnect of its own).
    m.closedAt ??= Date.now();
  });
  client.on('disconnected', () => (m.closedAt ??= Date.now()));
  return m;
}

function untilRound(server: FederationServer, round: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`round ${round} not committed within ${timeoutMs} ms`)), timeoutMs);
    const check = (): void => {
      if (server.stats().committedRound < round) return;
      clearTimeout(timer);
      server.events.off('roundCommitted', check);
      resolve();
    };
    server.events.on('roundCommitted', check);
    check();
  });
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string; exitedAt: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('close', (status) => {
      clearTimeout(killer);
      resolve({ status, stdout, stderr, exitedAt: Date.now() });
    }),
  );
}

/** Uploads the server accepted from `clientId` after `since`. */
function uploadsAfter(server: FederationServer, clientId: string): { count: () => number; since: (t: number) => void } {
  let since = Infinity;
  let count = 0;
  server.events.on('upload', (e) => {
    if (e.clientId === clientId && Date.now() > since) count++;
  });
  return { count: () => count, since: (t) => (since = t) };
}

/**
 * Whether an unbound token can take `clientId` over: the refusal's code, or null when it was admitted.
 * The client stops at its first fatal error.
 */
async function claim(server: FederationServer, clientId: string): Promise<number | null> {
  const { token } = await createToken(server.store, 'newcomer');
  const m = member(server, clientId, token);
  const outcome = await Promise.race([m.run, sleep(3000).then(() => 'running' as const)]);
  if (outcome === 'running') {
    m.client.stop();
    await m.run;
    return null;
  }
  return m.errors[0] ?? -1;
}

test(
  'LevelDB: tokens revoke while the server runs closes the live session within a second, and the client id stays reserved',
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedk-revoke-'));
    const store = join(dir, 'store');
    const model = new QuadraticToyTrainer({ dimension: DIMENSION, clientSeed: 0 });
    const server = await startServer({ config, modelHash: model.modelHash, generatorVersion: 1, paramCount: DIMENSION, storePath: store, minClients: 1 });
    const members: Member[] = [];
    try {
      // Alice's token takes her id at its first hello; Bob's is granted his.
      const alice = await createToken(server.store, 'alice');
      const bob = await createToken(server.store, 'bob', 'bob');
      const mallory = await createToken(server.store, 'mallory', 'mallory');
      members.push(member(server, 'alice', alice.token), member(server, 'bob', bob.token), member(server, 'mallory', mallory.token));
      const [a, b, m] = members;
      await untilRound(server, 3, 20_000);
      const late = uploadsAfter(server, 'alice');

      // Through the command line: the server holds the folder, so it takes the request itself.
      const started = Date.now();
      const revoked = await cli(['tokens', 'revoke', alice.id, '--store', store]);
      assert.equal(revoked.status, 0, revoked.stderr);
      assert.match(revoked.stderr, /revoked [0-9a-f]{16}: the running server closed its 1 live session; its client id stays reserved/);
      assert.ok(a.closedAt !== null && a.closedAt >= started && a.closedAt <= revoked.exitedAt, 'alice is closed before the command returns');
      late.since(a.closedAt);
      const aliceEnd = await a.run;
      assert.match(String(aliceEnd), /AuthFailed|revoked/);
      assert.deepEqual(a.errors, [ErrorCode.AuthFailed]);

      // In the process: revoking through the server's store closes the session within a second.
      const t0 = Date.now();
      assert.equal(await revokeToken(server.store, mallory.id), true);
      const deadline = Date.now() + 1000;
      while (m.closedAt === null && Date.now() < deadline) await sleep(10);
      assert.ok(m.closedAt !== null, 'mallory is closed within a second');
      console.log(`in-process revocation closed the session after ${m.closedAt - t0} ms`);
      await m.run;

      // Bob goes on alone; Alice uploads nothing more, and her id is not for an unbound token.
      const at = server.stats().committedRound;
      await untilRound(server, at + 3, 20_000);
      assert.equal(late.count(), 0, 'no upload of the revoked token after its session closed');
      assert.equal(await claim(server, 'alice'), ErrorCode.IdentityMismatch);
      assert.equal(await claim(server, 'mallory'), ErrorCode.IdentityMismatch);
      const listed = await listTokens(server.store);
      assert.ok(listed.find((t) => t.id === alice.id)?.revokedAt, 'the revoked token is kept, marked revoked');
      assert.equal(listed.find((t) => t.id === alice.id)?.clientId, 'alice');
      // The operator may still grant the id to a new token of their own.
      const again = await createToken(server.store, 'alice again', 'alice');
      const back = member(server, 'alice', again.token);
      members.push(back);
      await untilRound(server, server.stats().committedRound + 2, 20_000);
      assert.deepEqual(back.errors, []);
      assert.equal(b.errors.length, 0);
    } finally {
      for (const x of members) x.client.stop();
      await Promise.all(members.map((x) => x.run));
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'PostgreSQL: tokens revoke while a gateway serves closes the live session within a second of the command, and the client id stays reserved',
  { timeout: 120_000 },
  async () => {
    const pg = await startPostgres();
    const members: Member[] = [];
    let server: FederationServer | null = null;
    let store: PgFederationStore | null = null;
    try {
      const url = await pg.createDatabase('revoke');
      store = await PgFederationStore.open(url, { password: pg.password });
      const model = new QuadraticToyTrainer({ dimension: DIMENSION, clientSeed: 0 });
      server = await startServer({ config, modelHash: model.modelHash, generatorVersion: 1, paramCount: DIMENSION, store, minClients: 1 });
      const alice = await createToken(store, 'alice');
      const bob = await createToken(store, 'bob', 'bob');
      members.push(member(server, 'alice', alice.token), member(server, 'bob', bob.token));
      const [a] = members;
      await untilRound(server, 3, 30_000);
      const late = uploadsAfter(server, 'alice');

      const revoked = await cli(['tokens', 'revoke', alice.id, '--store', url], { PGPASSWORD: pg.password });
      assert.equal(revoked.status, 0, revoked.stderr);
      const deadline = revoked.exitedAt + 1000;
      while (a.closedAt === null && Date.now() < deadline) await sleep(10);
      assert.ok(a.closedAt !== null, 'alice is closed within a second of the command');
      console.log(`PostgreSQL revocation closed the session ${a.closedAt - revoked.exitedAt} ms after the command exited`);
      late.since(a.closedAt);
      assert.match(String(await a.run), /AuthFailed|revoked/);
      assert.deepEqual(a.errors, [ErrorCode.AuthFailed]);

      const at = server.stats().committedRound;
      await untilRound(server, at + 3, 30_000);
      assert.equal(late.count(), 0, 'no upload of the revoked token after its session closed');
      assert.equal(await claim(server, 'alice'), ErrorCode.IdentityMismatch);
    } finally {
      for (const x of members) x.client.stop();
      await Promise.all(members.map((x) => x.run));
      await server?.close();
      await store?.close();
      pg.stop();
    }
  },
);
