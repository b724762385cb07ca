// Coordinator election on a real PostgreSQL: of three gateways' stores on one database exactly one
// coordinates; when its session ends, exactly one of the others takes over within the election
// interval (here 100 ms; the test allows 10 s); a commit through one store reaches the others' watchers by NOTIFY, well before their poll.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { PgFederationStore } from '../../federation/pg-store';
import { startPostgres } from '../helpers/postgres';

const K = 8;

async function until(pred: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

test('one coordinator at a time, failover when it goes, commits heard by NOTIFY', { timeout: 60_000 }, async () => {
  const pg = await startPostgres();
  const stores: PgFederationStore[] = [];
  try {
    const url = await pg.createDatabase('election');
    // Polling every 30 s: only a notification can bring a commit within the test's bound.
    for (let i = 0; i < 3; i++) stores.push(await PgFederationStore.open(url, { password: pg.password, electMs: 100, pollMs: 30_000 }));
    assert.ok(await until(() => stores.some((s) => s.coordinator), 10_000));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(stores.filter((s) => s.coordinator).length, 1, 'exactly one coordinator');

    const heard = stores.map(() => 0);
    stores.forEach((s, i) => s.watch(() => heard[i]++));
    const before = [...heard];
    const v = Float64Array.from({ length: K }, (_, j) => j);
    await stores[0].commitRound(
      { round: 1, coefficients: v, residual: v, importanceSum: v, importanceCount: v },
      { round: 1, change: v, participants: ['a'], examples: 1, lossBefore: 1, lossAfter: 1, committedAt: new Date(0).toISOString() },
    );
    // Well within the 30 s poll: the notification brought it.
    assert.ok(await until(() => heard.every((n, i) => n > before[i]), 10_000), 'every store hears of the commit');
    assert.equal(await stores[2].committedRound(), 1);

    const leader = stores.find((s) => s.coordinator) as PgFederationStore;
    await leader.close();
    stores.splice(stores.indexOf(leader), 1);
    assert.ok(await until(() => stores.some((s) => s.coordinator), 10_000), 'another store takes over');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(stores.filter((s) => s.coordinator).length, 1, 'still exactly one');
  } finally {
    for (const s of stores) await s.close();
    pg.stop();
  }
});
