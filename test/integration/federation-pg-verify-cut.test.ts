// A gateway verifies the store's chain at its start while it holds the commit lock on a connection of its
// own, idle until the check ends. A database restart (here: that connection terminated) while the check
// runs must fail or finish the start, never end the process with an unhandled connection error.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Client } from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { COMMIT_LOCK, LOCK_CLASS } from '../../federation/gateway/leader';
import { PgFederationStore } from '../../federation/pg-store';
import type { FederationConfig } from '../../protocol';
import { startPostgres } from '../helpers/postgres';

const K = 4096;
const ROUNDS = 120;
const config: FederationConfig = {
  k: K,
  federationSeed: 3,
  epsilon: 1e-3,
  eta: 0.01,
  tau: 4,
  batchSize: 1,
  sampling: 'pro',
  weighting: 'examples',
  rounds: 500,
  clientsPerRound: 1,
  deadlineMs: 1000,
};

test("a gateway's commit-lock connection cut while it verifies the chain does not end the process", { timeout: 120_000 }, async () => {
  const pg = await startPostgres();
  try {
    const url = await pg.createDatabase('cut');
    const open = () => PgFederationStore.open(url, { password: pg.password, pollMs: 200, electMs: 50 });
    const store = await open();
    await store.saveConfig(config);
    const coefficients = new Float64Array(K);
    for (let round = 1; round <= ROUNDS; round++) {
      const change = Float64Array.from({ length: K }, (_, j) => ((j * round) % 7) - 3);
      change.forEach((c, j) => (coefficients[j] += c));
      const state = {
        round,
        coefficients: new Float64Array(coefficients),
        residual: new Float64Array(K),
        importanceSum: new Float64Array(K),
        importanceCount: new Float64Array(K),
      };
      await store.commitRound(state, { round, change, participants: ['a'], examples: 1, lossBefore: 1, lossAfter: 0.5, committedAt: `t${round}` });
    }
    await store.close();

    // Terminates whichever connection holds the commit lock, as soon as one does.
    const killer = new Client({ ...parseIntoClientConfig(url), password: pg.password });
    await killer.connect();
    let done = false;
    let cut = false;
    const hunt = (async () => {
      while (!done && !cut) {
        const { rows } = await killer.query<{ pid: number }>(
          "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = $2",
          [LOCK_CLASS, COMMIT_LOCK],
        );
        if (rows.length > 0) {
          await killer.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
          cut = true;
        }
      }
    })();
    const opened = await open().then(
      (s) => s,
      (err: unknown) => err as Error,
    );
    done = true;
    await hunt;
    await killer.end();
    assert.ok(cut, 'the commit lock was held, and cut, while the chain was verified');
    // Either outcome is an answer: the start failed with an error, or the check finished through the pool.
    if (opened instanceof PgFederationStore) await opened.close();
    else assert.ok(opened instanceof Error);
    // The process is still here, and a later start opens the store.
    const again = await open();
    try {
      assert.equal(await again.committedRound(), ROUNDS);
    } finally {
      await again.close();
    }
  } finally {
    pg.stop();
  }
});
