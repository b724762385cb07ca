// Per-record integrity and repair from the round history, on a store a real federation wrote: a bit
// flipped in a middle round's record is refused naming that round, and `fedkseed server repair` keeps
// the rounds before it with the state bit for bit as it was after the last of them (clients ahead of it
// rebuild their replicas and finish on one); a flipped bit in the state's residual is refused naming the
// residual and rebuilt exactly from the history with no round lost; an undamaged store verifies and
// repair leaves it as it is; a store whose first round is damaged is left as it is too.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ClassicLevel } from 'classic-level';
import type { FederationConfig } from '../../protocol';
import { storeContentHash } from '../../federation/backup';
import { LevelFederationStore } from '../../federation/level-store';
import { verifyChain } from '../../federation/record-chain';
import { startServer, type FederationServer } from '../../federation/server';
import type { FederationState } from '../../federation/store';
import { FederationClient } from '../../federation/client/federation-client';
import { QuadraticToyTrainer } from '../../bench/toy-trainer';

const root = join(import.meta.dirname, '..', '..');
const config: FederationConfig = {
  k: 64,
  federationSeed: 12,
  epsilon: 1e-3,
  eta: 0.05,
  tau: 4,
  batchSize: 1,
  sampling: 'pro',
  weighting: 'examples',
  rounds: 6,
  clientsPerRound: 2,
  deadlineMs: 5000,
};
const MODEL = new QuadraticToyTrainer({ dimension: 8, clientSeed: 0 }).modelHash;

function serve(storePath: string, port = 0): Promise<FederationServer> {
  return startServer({ config, modelHash: MODEL, generatorVersion: 1, paramCount: 8, storePath, port, requireToken: false });
}

function cli(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'cli', 'main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const VECTORS = ['coefficients', 'residual', 'importanceSum', 'importanceCount'] as const;

/** The state's vectors bit for bit. */
function assertSameState(got: FederationState | null, want: FederationState, what: string): void {
  assert.ok(got, what);
  assert.equal(got.round, want.round, what);
  for (const v of VECTORS) assert.ok(Buffer.from(got[v].buffer).equals(Buffer.from(want[v].buffer)), `${what}: ${v} differs`);
}

async function stateOf(path: string): Promise<FederationState | null> {
  const store = await LevelFederationStore.open(path);
  try {
    return await store.loadState();
  } finally {
    await store.close();
  }
}

/** Rewrites one stored value behind the store's back, as damage would. */
async function damage(path: string, key: string, change: (value: Buffer) => Buffer): Promise<void> {
  const db = new ClassicLevel<string, Buffer>(path, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  await db.open();
  const value = await db.get(key);
  assert.ok(value, key);
  await db.put(key, change(value));
  await db.close();
}

/** One bit of round `round`'s change vector flipped, the record otherwise as it was. */
const flipChange = (value: Buffer): Buffer => {
  const record = JSON.parse(value.toString('utf8')) as { change: string };
  const bytes = Buffer.from(record.change, 'base64');
  bytes[8 * 5 + 6] ^= 0x10;
  return Buffer.from(JSON.stringify({ ...record, change: bytes.toString('base64') }));
};

/** One bit of the state's residual vector flipped (the state: 8 header bytes, then C, the residual, …). */
const flipResidual = (value: Buffer): Buffer => {
  const bytes = Buffer.from(value);
  bytes[8 + 8 * config.k + 8 * 3 + 7] ^= 0x01;
  return bytes;
};

test('damage is refused by name and repaired from the round history: a middle round, the residual, and no damage', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-repair-'));
  try {
    const store = join(dir, 'store');
    const server = await serve(store);
    const clients = [1, 2].map(
      (i) =>
        new FederationClient({
          url: server.url,
          clientId: `c${i}`,
          token: 'open',
          trainer: new QuadraticToyTrainer({ dimension: 8, clientSeed: i }),
          backoff: { initialMs: 20, maxMs: 100, maxAttempts: 500 },
        }),
    );
    const resyncs: { round: number; message: string }[] = [];
    for (const c of clients) c.on('resync', (e) => resyncs.push(e));
    // The state after each round, read as each commits (the next round needs the clients' training first).
    const states = new Map<number, Promise<FederationState | null>>();
    const stopped = new Promise<void>((resolve) =>
      server.events.on('roundCommitted', (e) => {
        states.set(e.round, server.store.loadState());
        if (e.round === 4) resolve();
      }),
    );
    const runs = Promise.all(clients.map((c) => c.run()));
    const stopAll = setTimeout(() => clients.forEach((c) => c.stop()), 90_000).unref();
    try {
      await stopped;
      await server.close();
      const after2 = (await states.get(2)) as FederationState;
      const after4 = (await states.get(4)) as FederationState;
      assert.equal(after2.round, 2);
      assert.equal(after4.round, 4);
      const pristine = join(dir, 'pristine');
      cpSync(store, pristine, { recursive: true });

      // (c) An undamaged store verifies; repair changes nothing.
      const untouched = join(dir, 'untouched');
      cpSync(pristine, untouched, { recursive: true });
      const before = await LevelFederationStore.open(untouched);
      let hash: string;
      try {
        assert.deepEqual((await verifyChain(before)).damage, []);
        hash = await storeContentHash(before);
      } finally {
        await before.close();
      }
      let r = cli('server', 'repair', '--store', untouched);
      assert.equal(r.status, 0, r.out);
      assert.match(r.out, /verifies .* nothing to repair, nothing changed/);
      const again = await LevelFederationStore.open(untouched);
      try {
        assert.equal(await storeContentHash(again), hash);
      } finally {
        await again.close();
      }
      assert.deepEqual(
        readdirSync(dir).filter((f) => f.startsWith('untouched.')),
        [],
      );

      // (b) A flipped bit in the state's residual: refused naming it; rebuilt exactly, no round lost.
      const residual = join(dir, 'residual');
      cpSync(pristine, residual, { recursive: true });
      await damage(residual, 'state', flipResidual);
      await assert.rejects(LevelFederationStore.open(residual), /the state's residual vector fails its checksum; rounds 1\.\.4 are intact/);
      r = cli('server', 'repair', '--store', residual);
      assert.equal(r.status, 0, r.out);
      assert.match(r.out, /kept every round \(1\.\.4\): no round lost/);
      assert.match(r.out, /the error-feedback residual from the rounds' history/);
      assertSameState(await stateOf(residual), after4, 'the residual rebuilt');
      assert.equal(readdirSync(dir).filter((f) => f.startsWith('residual.damaged-')).length, 1, 'the damaged folder is kept');

      // A store whose first round is damaged keeps no round: repair refuses and changes nothing.
      const first = join(dir, 'first');
      cpSync(pristine, first, { recursive: true });
      await damage(first, 'round/0000000001', flipChange);
      r = cli('server', 'repair', '--store', first);
      assert.notEqual(r.status, 0, r.out);
      assert.match(r.out, /no round can be kept \(round 1's record does not match its hash.*the store was not changed; restore it from a backup/s);
      assert.deepEqual(
        readdirSync(dir).filter((f) => f.startsWith('first.')),
        [],
      );
      await assert.rejects(LevelFederationStore.open(first), /round 1's record does not match its hash/);

      // (a) A flipped bit in round 3's record: refused naming round 3; repair keeps rounds 1..2.
      await damage(store, 'round/0000000003', flipChange);
      await assert.rejects(LevelFederationStore.open(store), (err: Error) => {
        assert.match(err.message, /round 3's record does not match its hash/);
        assert.match(err.message, /rounds 1\.\.2 are intact, 3\.\.4 are not/);
        assert.match(err.message, /fedkseed server repair --store/);
        return true;
      });
      await assert.rejects(LevelFederationStore.open(store, { trustContent: true }), /--trust-store does not accept records that fail their own hashes/);
      r = cli('server', 'repair', '--store', store);
      assert.equal(r.status, 0, r.out);
      assert.match(r.out, /kept rounds 1\.\.2; lost rounds 3\.\.4/);
      assert.match(r.out, /lost: \d+ reference replica digests .*: the next clients to report decide them again/);
      assert.match(r.out, /the damaged store is kept at /);
      assertSameState(await stateOf(store), after2, 'the state after round 2');
      const repaired = await LevelFederationStore.open(store);
      try {
        const chain = await verifyChain(repaired);
        assert.deepEqual([chain.damage, chain.intact, chain.historyComplete], [[], 2, true]);
      } finally {
        await repaired.close();
      }

      // Clients ahead of the repaired store (at round 4) rebuild their replicas and finish on one.
      const resumed = await serve(store, server.port);
      try {
        const results = await runs;
        assert.deepEqual(
          results.map((x) => x.finalRound),
          [6, 6],
        );
        assert.equal(new Set(results.map((x) => x.digest)).size, 1);
        assert.ok(resyncs.length >= 1 && resyncs.every((e) => /server has committed 2/.test(e.message)), JSON.stringify(resyncs));
      } finally {
        await resumed.close();
      }
    } finally {
      clearTimeout(stopAll);
      clients.forEach((c) => c.stop());
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
