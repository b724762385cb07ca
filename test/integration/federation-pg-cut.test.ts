// The database cuts a gateway's connections while it commits (a restart, an administrator's
// pg_terminate_backend): the commits in flight fail, the process lives on, and the next commits land
// on fresh connections with the round advancing by one each time.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { PgFederationStore } from '../../federation/pg-store';
import type { FederationState } from '../../federation/store';
import { startPostgres } from '../helpers/postgres';

const K = 512;

test('connections cut mid-commit fail those commits only; the store goes on', { timeout: 60_000 }, async () => {
  const server = await startPostgres();
  const admin = new pg.Client({ ...parseIntoClientConfig(server.url()), password: server.password });
  let store: PgFederationStore | null = null;
  try {
    const url = await server.createDatabase('cut');
    store = await PgFederationStore.open(url, { password: server.password, pollMs: 60_000 });
    await admin.connect();
    const v = Float64Array.from({ length: K }, (_, j) => j);
    const state = (round: number): FederationState => ({ round, coefficients: v, residual: v, importanceSum: v, importanceCount: v });
    const record = (round: number) => ({
      round,
      change: v,
      participants: ['a'],
      examples: 1,
      lossBefore: 1,
      lossAfter: 1,
      committedAt: new Date(0).toISOString(),
    });
    // Cut every other session of the database, again and again, while commits run.
    let cutting = true;
    let cuts = 0;
    const cutter = (async () => {
      while (cutting) {
        const { rowCount } = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'cut' AND pid <> pg_backend_pid()");
        cuts += rowCount ?? 0;
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    let failed = 0;
    for (let attempt = 0; attempt < 1000 && (await committed(store)) < 40; attempt++) {
      const next = (await committed(store)) + 1;
      await store.commitRound(state(next), record(next)).catch(() => failed++);
    }
    cutting = false;
    await cutter;
    assert.ok(cuts > 0 && failed > 0, `connections were cut (${cuts}) and some commits failed (${failed})`);
    assert.equal(await committed(store), 40, 'the commits after each cut landed');
    for (let r = 1; r <= 40; r++) assert.ok(await store.loadRound(r), `round ${r} is stored`);
  } finally {
    await store?.close();
    await admin.end().catch(() => undefined);
    server.stop();
  }
});

/** The committed round, retried while a cut connection fails the read. */
async function committed(store: PgFederationStore): Promise<number> {
  for (;;) {
    try {
      return await store.committedRound();
    } catch {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}
