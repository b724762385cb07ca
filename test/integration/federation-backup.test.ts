// Backup and restore through the FederationStore interface: a backup restored into an empty store gives
// back the same file byte for byte (each round's history included; a version 1 file without it still
// restores); a damaged, cut or altered backup is refused by name with nothing
// restored; a restored store serves, and its clients finish the federation on one replica.
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FederationConfig } from '../../protocol';
import { BackupDamagedError, readBackup, restoreBackup, storeIsEmpty, writeBackup } from '../../federation/backup';
import { LevelFederationStore } from '../../federation/level-store';
import { verifyChain } from '../../federation/record-chain';
import { PgFederationStore } from '../../federation/pg-store';
import { startServer, type FederationServer } from '../../federation/server';
import { createToken } from '../../federation/tokens';
import { FederationClient } from '../../federation/client/federation-client';
import { QuadraticToyTrainer } from '../../bench/toy-trainer';
import { startPostgres } from '../helpers/postgres';

const config: FederationConfig = {
  k: 64,
  federationSeed: 31,
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
/** The operator's backup key: every backup here is made and read with it. */
const KEY = new Uint8Array(randomBytes(32));

function serve(storePath: string, port = 0): Promise<FederationServer> {
  return startServer({ config, modelHash: MODEL, generatorVersion: 1, paramCount: 8, storePath, port });
}

/** Two token-holding clients; each client's run() continues across a server restart. */
async function clientsOf(server: FederationServer): Promise<FederationClient[]> {
  return Promise.all(
    [1, 2].map(async (i) => {
      const { token } = await createToken(server.store, `client ${i}`, `c${i}`, { maxExamples: 100 });
      return new FederationClient({
        url: server.url,
        clientId: `c${i}`,
        token,
        trainer: new QuadraticToyTrainer({ dimension: 8, clientSeed: i }),
        backoff: { initialMs: 20, maxMs: 100, maxAttempts: 500 },
      });
    }),
  );
}

/** Runs the server until round `stopAt` is committed, then closes it; the clients keep running. */
async function federateUntil(
  storePath: string,
  stopAt: number,
): Promise<{ clients: FederationClient[]; runs: Promise<{ finalRound: number; digest: string }[]>; port: number }> {
  const server = await serve(storePath);
  const clients = await clientsOf(server);
  const stopped = new Promise<void>((resolve) => server.events.on('roundCommitted', (e) => e.round === stopAt && resolve()));
  const runs = Promise.all(clients.map((c) => c.run()));
  await stopped;
  await server.close();
  return { clients, runs, port: server.port };
}

async function withDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-backup-'));
  try {
    return await body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function backupOf(storePath: string, file: string): Promise<void> {
  const store = await LevelFederationStore.open(storePath);
  try {
    await writeBackup(store, file, KEY);
  } finally {
    await store.close();
  }
}

test('a backup restored into an empty store gives back the same backup byte for byte, and the same federation', async () => {
  await withDir(async (dir) => {
    const { clients, runs } = await federateUntil(join(dir, 'a'), 3);
    for (const c of clients) c.stop();
    await runs.catch(() => undefined);
    await backupOf(join(dir, 'a'), join(dir, 'a.backup'));

    const backup = await readBackup(join(dir, 'a.backup'), { key: KEY });
    assert.ok(backup.state && backup.state.round >= 3);
    assert.equal(backup.rounds.length, backup.state.round);
    assert.equal(backup.tokens.length, 2);
    assert.ok(backup.digests.length > 0, 'the reference digests travel too');
    assert.ok(
      backup.rounds.every((r) => r.after),
      'every round carries its history (what it left in the residual and importance)',
    );
    assert.ok(
      backup.rounds.every((r) => r.after?.robust),
      'every round carries its statistics (the history of the bounds)',
    );
    const b = await LevelFederationStore.open(join(dir, 'b'));
    try {
      await restoreBackup(backup, b);
      await writeBackup(b, join(dir, 'b.backup'), KEY);
    } finally {
      await b.close();
    }
    assert.ok(readFileSync(join(dir, 'a.backup')).equals(readFileSync(join(dir, 'b.backup'))), 'the restored store backs up to the same bytes');

    const [sa, sb] = [await LevelFederationStore.open(join(dir, 'a')), await LevelFederationStore.open(join(dir, 'b'))];
    try {
      assert.deepEqual(await sb.loadState(), await sa.loadState());
      assert.deepEqual(await sb.loadConfig(), await sa.loadConfig());
      for (let r = 1; r <= backup.state.round; r++) assert.deepEqual(await sb.loadRound(r), await sa.loadRound(r));
      assert.deepEqual(await sb.listTokens(), await sa.listTokens());
      // Into a store that holds a federation already: refused, nothing changed.
      await assert.rejects(restoreBackup(backup, sb), /not empty/);
    } finally {
      await sa.close();
      await sb.close();
    }

    // A version 1 backup (rounds without their history) is still read and restored: C and the state as
    // backed up, the rounds chained, their residual and importance history unknown.
    const lines = readFileSync(join(dir, 'a.backup'), 'utf8').split('\n').slice(0, -2);
    const v1 = lines.map((l, i) => {
      const record = JSON.parse(l) as Record<string, unknown>;
      if (i === 0) return JSON.stringify({ ...record, version: 1 });
      delete record.after;
      return JSON.stringify(record);
    });
    const content = v1.map((l) => `${l}\n`).join('');
    writeFileSync(
      join(dir, 'v1.backup'),
      `${content}${JSON.stringify({ kind: 'end', records: v1.length - 1, sha256: createHash('sha256').update(content).digest('hex') })}\n`,
    );
    const old = await readBackup(join(dir, 'v1.backup'), { key: KEY, acceptUnauthenticated: true });
    assert.ok(old.rounds.every((r) => r.after === null));
    const c = await LevelFederationStore.open(join(dir, 'c'));
    try {
      await restoreBackup(old, c);
      const [got, want] = [await c.loadState(), backup.state];
      for (const v of ['coefficients', 'residual', 'importanceSum', 'importanceCount'] as const) assert.deepEqual(got?.[v], want[v], v);
      const chain = await verifyChain(c);
      assert.deepEqual([chain.damage, chain.intact, chain.historyComplete], [[], backup.state.round, false]);
    } finally {
      await c.close();
    }
  });
});

test('a damaged, cut or altered backup is refused by name and nothing is restored', async () => {
  await withDir(async (dir) => {
    const { clients, runs } = await federateUntil(join(dir, 'a'), 2);
    for (const c of clients) c.stop();
    await runs.catch(() => undefined);
    await backupOf(join(dir, 'a'), join(dir, 'good'));
    const text = readFileSync(join(dir, 'good'), 'utf8');
    const lines = text.split('\n').slice(0, -1);
    /** Lines with the end line's hash and HMAC recomputed with the key: the checks behind the HMAC (a holder of the key who made a faulty file). */
    const resealed = (body: string[]): string => {
      const content = body
        .slice(0, -1)
        .map((l) => `${l}\n`)
        .join('');
      const end = JSON.parse(body.at(-1) as string) as { records: number };
      return `${content}${JSON.stringify({ kind: 'end', records: end.records, sha256: createHash('sha256').update(content).digest('hex'), hmac: createHmac('sha256', KEY).update(content).digest('hex') })}\n`;
    };
    const roundLine = lines.findIndex((l) => l.startsWith('{"kind":"round"'));
    const alter = (line: string): string => {
      const record = JSON.parse(line) as { change: { values: string } };
      const values = new Float64Array(Uint8Array.from(Buffer.from(record.change.values, 'base64')).buffer);
      values[0] += 1;
      record.change.values = Buffer.from(values.buffer).toString('base64');
      return JSON.stringify(record);
    };
    const alteredChange = lines.map((l, i) => (i === roundLine ? alter(l) : l));
    // The last round's: an earlier round's history may be overwritten by later rounds, the last one's is the state's.
    const lastRoundLine = lines.reduce((last, l, i) => (l.startsWith('{"kind":"round"') ? i : last), -1);
    const alteredHistory = lines.map((l, i) => {
      if (i !== lastRoundLine) return l;
      const record = JSON.parse(l) as { after: { residual: { values: string } } };
      const values = new Float64Array(Uint8Array.from(Buffer.from(record.after.residual.values, 'base64')).buffer);
      values[0] += 0.25;
      record.after.residual.values = Buffer.from(values.buffer).toString('base64');
      return JSON.stringify(record);
    });
    assert.notDeepEqual(alteredChange, lines);
    const cases: [string, string, RegExp][] = [
      ['a flipped byte', text.replace('"examples":', '"examplez":').replace('"participants"', '"participantz"'), /line \d+ is not a valid record|SHA-256/],
      ['a digit changed', text.replace(/"examples":(\d)/, (_, d) => `"examples":${(Number(d) + 1) % 10}`), /does not match its SHA-256/],
      ['cut short', text.slice(0, Math.floor(text.length / 2)), /no end line|not JSON/],
      [
        'its end line dropped',
        lines
          .slice(0, -1)
          .map((l) => `${l}\n`)
          .join(''),
        /no end line/,
      ],
      ['a round altered and the hash recomputed', resealed(alteredChange), /do not add up to its coefficients/],
      ["a round's history altered and the hash recomputed", resealed(alteredHistory), /history does not add up to its state's residual/],
      ['a round dropped and the hash recomputed', resealed(lines.filter((_, i) => i !== roundLine)), /round \d+ comes where round \d+ should|rounds/],
      ['not a backup', '{"hello":1}\n', /line 1 is not a valid record/],
    ];
    for (const [what, content, message] of cases) {
      writeFileSync(join(dir, 'bad'), content);
      await assert.rejects(readBackup(join(dir, 'bad'), { key: KEY }), (err: unknown) => {
        assert.ok(err instanceof BackupDamagedError, `${what}: ${String(err)}`);
        assert.match(err.message, /is damaged or was altered/, what);
        assert.match(err.message, message, what);
        return true;
      });
    }
  });
});

test('a restored store serves: clients reconnect, catch up and finish on one replica', async () => {
  await withDir(async (dir) => {
    const { clients, runs, port } = await federateUntil(join(dir, 'a'), 3);
    // The first store is lost; its backup is restored into a new one and served on the same address.
    await backupOf(join(dir, 'a'), join(dir, 'a.backup'));
    rmSync(join(dir, 'a'), { recursive: true });
    const restored = await LevelFederationStore.open(join(dir, 'b'));
    try {
      await restoreBackup(await readBackup(join(dir, 'a.backup'), { key: KEY }), restored);
    } finally {
      await restored.close();
    }
    const server = await serve(join(dir, 'b'), port);
    // Should the test fail, the clients stop instead of retrying on.
    const stopAll = setTimeout(() => clients.forEach((c) => c.stop()), 60_000).unref();
    try {
      const results = await runs;
      assert.deepEqual(
        results.map((r) => r.finalRound),
        [6, 6],
      );
      assert.equal(new Set(results.map((r) => r.digest)).size, 1);
      const state = await server.store.loadState();
      assert.equal(state?.round, 6);
      for (let r = 1; r <= 6; r++) assert.ok(await server.store.loadRound(r), `round ${r}`);
    } finally {
      clearTimeout(stopAll);
      await server.close();
    }
  });
});

test('clients ahead of a store restored from an older backup rebuild their replicas and finish on one', async () => {
  await withDir(async (dir) => {
    // The backup is taken at round 2; the federation goes on to round 4; then its store is lost.
    const server = await serve(join(dir, 'a'));
    const clients = await clientsOf(server);
    const resyncs: { round: number; message: string }[] = [];
    for (const c of clients) c.on('resync', (e) => resyncs.push(e));
    let backedUp: Promise<void> | null = null;
    const lost = new Promise<void>((resolve) =>
      server.events.on('roundCommitted', (e) => {
        if (e.round === 2) backedUp = writeBackup(server.store, join(dir, 'a.backup'), KEY).then(() => undefined);
        if (e.round === 4) resolve();
      }),
    );
    const runs = Promise.all(clients.map((c) => c.run()));
    const stopAll = setTimeout(() => clients.forEach((c) => c.stop()), 60_000).unref();
    try {
      await lost;
      await server.close();
      await backedUp;
      const restored = await LevelFederationStore.open(join(dir, 'b'));
      try {
        await restoreBackup(await readBackup(join(dir, 'a.backup'), { key: KEY }), restored);
      } finally {
        await restored.close();
      }
      const again = await serve(join(dir, 'b'), server.port);
      try {
        const results = await runs;
        assert.deepEqual(
          results.map((r) => r.finalRound),
          [6, 6],
        );
        assert.equal(new Set(results.map((r) => r.digest)).size, 1);
        assert.ok(resyncs.length >= 1 && resyncs.every((e) => e.round >= 3 && /server has committed 2/.test(e.message)), JSON.stringify(resyncs));
      } finally {
        await again.close();
      }
    } finally {
      clearTimeout(stopAll);
    }
  });
});

test('a backup of the embedded store restores into PostgreSQL and backs up from there to the same bytes', async () => {
  await withDir(async (dir) => {
    const { clients, runs } = await federateUntil(join(dir, 'a'), 2);
    for (const c of clients) c.stop();
    await runs.catch(() => undefined);
    await backupOf(join(dir, 'a'), join(dir, 'level.backup'));
    const pg = await startPostgres();
    try {
      const url = await pg.createDatabase('restored');
      const store = await PgFederationStore.open(url, { password: pg.password, pollMs: 200, electMs: 50 });
      try {
        await restoreBackup(await readBackup(join(dir, 'level.backup'), { key: KEY }), store);
        await writeBackup(store, join(dir, 'pg.backup'), KEY);
        await assert.rejects(restoreBackup(await readBackup(join(dir, 'level.backup'), { key: KEY }), store), /not empty/);
      } finally {
        await store.close();
      }
      assert.ok(readFileSync(join(dir, 'level.backup')).equals(readFileSync(join(dir, 'pg.backup'))));
    } finally {
      pg.stop();
    }
  });
});

test('tampered backups with a recomputed SHA-256 are refused by their HMAC: 0 of 6 restored (an injected token, C shifted by 2^30, a changed configuration, truncated, no HMAC, another key)', async () => {
  await withDir(async (dir) => {
    const { clients, runs } = await federateUntil(join(dir, 'a'), 2);
    for (const c of clients) c.stop();
    await runs.catch(() => undefined);
    await backupOf(join(dir, 'a'), join(dir, 'good'));
    const lines = readFileSync(join(dir, 'good'), 'utf8').split('\n').slice(0, -1);
    const body = lines.slice(0, -1);
    /** What someone who can edit the file but lacks the key can do: recompute the SHA-256 and count, keep or drop the HMAC. */
    const sealed = (records: string[], hmac: 'keep' | 'drop' | Uint8Array = 'keep'): string => {
      const content = records.map((l) => `${l}\n`).join('');
      const old = JSON.parse(lines.at(-1) as string) as { hmac: string };
      const mac = hmac === 'keep' ? { hmac: old.hmac } : hmac === 'drop' ? {} : { hmac: createHmac('sha256', hmac).update(content).digest('hex') };
      return `${content}${JSON.stringify({ kind: 'end', records: records.length - 1, sha256: createHash('sha256').update(content).digest('hex'), ...mac })}\n`;
    };
    const edit = (kind: string, change: (r: Record<string, unknown>) => void): string[] =>
      body.map((l) => {
        const r = JSON.parse(l) as Record<string, unknown>;
        if (r.kind !== kind) return l;
        change(r);
        return JSON.stringify(r);
      });
    const shift = (b64: string, at: number): string => {
      const v = new Float64Array(Uint8Array.from(Buffer.from(b64, 'base64')).buffer);
      v[at] += 2 ** 30;
      return Buffer.from(v.buffer).toString('base64');
    };
    const token = JSON.stringify({
      kind: 'token',
      id: '00112233445566aa',
      label: 'injected',
      salt: 'aa',
      hash: createHash('sha256').update('aa').digest('hex'),
      createdAt: new Date(0).toISOString(),
      clientId: 'intruder',
    });
    // C shifted at one seed, with round 1's change shifted there too: the rounds still add up to C.
    let seed = -1;
    const shiftedRound = edit('round', (r) => {
      if (r.round !== 1) return;
      const change = r.change as { indices: string; values: string };
      seed = new Uint32Array(Uint8Array.from(Buffer.from(change.indices, 'base64')).buffer)[0];
      change.values = shift(change.values, 0);
    });
    const shiftedC = shiftedRound.map((l) => {
      const r = JSON.parse(l) as Record<string, unknown>;
      if (r.kind !== 'state') return l;
      r.coefficients = shift(r.coefficients as string, seed);
      return JSON.stringify(r);
    });
    const cases: [string, string, RegExp][] = [
      ['an injected token', sealed([...body, token]), /HMAC does not match/],
      ['C shifted by 2^30 (and a round with it)', sealed(shiftedC), /HMAC does not match/],
      ['a changed configuration', sealed(edit('config', (r) => ((r.config as { eta: number }).eta *= 10))), /HMAC does not match/],
      ['truncated to its configuration', sealed(body.slice(0, 2).map((l, i) => (i === 0 ? l.replace(/"round":\d+/, '"round":0') : l))), /HMAC does not match/],
      ['an injected token, its HMAC dropped', sealed([...body, token], 'drop'), /carries no HMAC/],
      ['an injected token, sealed with another key', sealed([...body, token], new Uint8Array(randomBytes(32))), /HMAC does not match/],
    ];
    let restored = 0;
    for (const [what, content, message] of cases) {
      writeFileSync(join(dir, 'tampered'), content);
      const store = await LevelFederationStore.open(join(dir, `into-${restored}-${what.length}`));
      try {
        await restoreBackup(await readBackup(join(dir, 'tampered'), { key: KEY }), store);
        restored++;
      } catch (err) {
        assert.ok(err instanceof BackupDamagedError, `${what}: ${String(err)}`);
        assert.match(err.message, /is damaged or was altered/, what);
        assert.match(err.message, message, what);
        assert.ok(await storeIsEmpty(store), `${what}: nothing restored`);
      } finally {
        await store.close();
      }
    }
    assert.equal(restored, 0, 'no tampered backup is restored');
    // Unchanged records resealed keep their HMAC and still read: the HMAC covers the content, not the file's history.
    writeFileSync(join(dir, 'same'), sealed(body));
    assert.equal((await readBackup(join(dir, 'same'), { key: KEY })).contentHash, (await readBackup(join(dir, 'good'), { key: KEY })).contentHash);
    // A backup without an HMAC (made before backups were authenticated) reads only when the operator accepts it.
    writeFileSync(join(dir, 'old'), sealed(body, 'drop'));
    await assert.rejects(readBackup(join(dir, 'old'), { key: KEY }), /carries no HMAC/);
    assert.ok(await readBackup(join(dir, 'old'), { key: KEY, acceptUnauthenticated: true }));
    // One with a wrong HMAC is refused even then.
    await assert.rejects(readBackup(join(dir, 'tampered'), { key: KEY, acceptUnauthenticated: true }), /HMAC does not match/);
  });
});
