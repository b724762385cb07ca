// One contract, two engines: the same tests run against the embedded LevelDB store and the PostgreSQL
// one (a real server this file starts and stops). Committed rounds survive a reopen, a commit must
// advance the round by exactly one (so a second commit of a round is refused, also when two race),
// a retried upload is kept once, a new attempt of a round starts without uploads, a commit clears its round's uploads and open-round record, and tokens,
// digests and presence read back as written. Every commit is chained and sealed (record-chain.ts), and a
// round's record altered behind the store's back is refused at open, naming that round.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ClassicLevel } from 'classic-level';
import { Client } from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { LevelFederationStore } from '../../federation/level-store';
import { PgFederationStore } from '../../federation/pg-store';
import { applyRound, initialState, verifyChain } from '../../federation/record-chain';
import { StaleRoundError, type FederationState, type FederationStore, type RoundRecord } from '../../federation/store';
import type { FederationConfig } from '../../protocol';
import { startPostgres, type TestPostgres } from '../helpers/postgres';

const K = 16;
const config: FederationConfig = {
  k: K,
  federationSeed: 5,
  epsilon: 1e-3,
  eta: 0.01,
  tau: 4,
  batchSize: 1,
  sampling: 'pro',
  weighting: 'examples',
  rounds: 9,
  clientsPerRound: 2,
  deadlineMs: 1000,
};

function stateAt(round: number): FederationState {
  const v = (f: number) => Float64Array.from({ length: K }, (_, j) => (j - 7) * f * round);
  return { round, coefficients: v(65536), residual: v(0.25), importanceSum: v(1.5), importanceCount: v(1) };
}

function recordOf(round: number): RoundRecord {
  return {
    round,
    change: Float64Array.from({ length: K }, (_, j) => j * round - 3),
    participants: ['a', `c${round}`],
    examples: 10 * round,
    lossBefore: round === 1 ? NaN : 2.5,
    lossAfter: 1.25,
    committedAt: new Date(1_700_000_000_000 + round).toISOString(),
  };
}

/** What a store gave back, less what it adds at commit (the chain's link, the round's history, the state's seal). */
function bare<T extends FederationState | RoundRecord | null>(x: T): T {
  if (x === null) return x;
  const { seal: _s, after: _a, link: _l, ...rest } = x as FederationState & RoundRecord;
  return rest as unknown as T;
}

interface Engine {
  readonly name: string;
  setup(): Promise<void>;
  teardown(): void;
  /** A new, empty store, how to open it again, and how to alter a round's examples behind its back (closed). */
  fresh(): Promise<{ store: FederationStore; reopen: () => Promise<FederationStore>; tamper: (round: number) => Promise<void> }>;
}

let pg: TestPostgres | null = null;
let databases = 0;
const dirs: string[] = [];

const engines: Engine[] = [
  {
    name: 'LevelDB',
    async setup() {},
    teardown() {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
    async fresh() {
      const dir = mkdtempSync(join(tmpdir(), 'fedk-contract-'));
      dirs.push(dir);
      const path = join(dir, 'store');
      const tamper = async (round: number): Promise<void> => {
        const db = new ClassicLevel<string, string>(path);
        const key = `round/${String(round).padStart(10, '0')}`;
        const record = JSON.parse((await db.get(key)) as string) as { examples: number };
        await db.put(key, JSON.stringify({ ...record, examples: record.examples + 1 }));
        await db.close();
      };
      return { store: await LevelFederationStore.open(path), reopen: () => LevelFederationStore.open(path), tamper };
    },
  },
  {
    name: 'PostgreSQL',
    async setup() {
      pg = await startPostgres();
    },
    teardown() {
      pg?.stop();
    },
    async fresh() {
      const server = pg as TestPostgres;
      const url = await server.createDatabase(`contract${++databases}`);
      const open = () => PgFederationStore.open(url, { password: server.password, pollMs: 200, electMs: 50 });
      const tamper = async (round: number): Promise<void> => {
        const client = new Client({ ...parseIntoClientConfig(url), password: server.password });
        await client.connect();
        await client.query('UPDATE fedkseed_rounds SET examples = examples + 1 WHERE round = $1', [round]);
        await client.end();
      };
      return { store: await open(), reopen: open, tamper };
    },
  },
];

for (const engine of engines) {
  describe(`FederationStore contract: ${engine.name}`, () => {
    before(() => engine.setup());
    after(() => engine.teardown());

    test('a fresh store is empty; config, state and rounds read back as written and survive a reopen', async () => {
      const { store, reopen } = await engine.fresh();
      assert.equal(await store.loadConfig(), null);
      assert.equal(await store.loadState(), null);
      assert.equal(await store.committedRound(), 0);
      await store.saveConfig(config);
      await store.commitRound(stateAt(1), recordOf(1));
      await store.commitRound(stateAt(2), recordOf(2));
      await store.saveDigest(2, 'ab'.repeat(32));
      await store.close();
      const again = await reopen();
      try {
        assert.deepEqual(await again.loadConfig(), config);
        assert.equal(await again.committedRound(), 2);
        assert.deepEqual(bare(await again.loadState()), stateAt(2));
        assert.deepEqual(bare(await again.loadRound(1)), recordOf(1));
        assert.deepEqual(bare(await again.loadRound(2)), recordOf(2));
        assert.equal(await again.loadRound(3), null);
        assert.equal(await again.loadDigest(2), 'ab'.repeat(32));
        assert.equal(await again.loadDigest(1), null);
      } finally {
        await again.close();
      }
    });

    test('the sampling secret: 32 bytes made at the first read, the same at every later read and after a reopen; two stores hold different ones', async () => {
      const { store, reopen } = await engine.fresh();
      const other = (await engine.fresh()).store;
      let secret: Uint8Array;
      try {
        secret = await store.loadSecret();
        assert.equal(secret.length, 32);
        assert.deepEqual(await store.loadSecret(), secret);
        assert.notDeepEqual(await other.loadSecret(), secret);
      } finally {
        await store.close();
        await other.close();
      }
      const again = await reopen();
      try {
        assert.deepEqual(await again.loadSecret(), secret);
      } finally {
        await again.close();
      }
    });

    test("every commit is chained and sealed: the chain verifies, and each round's record carries what the round left in the residual and importance", async () => {
      const { store } = await engine.fresh();
      try {
        for (let r = 1; r <= 3; r++) await store.commitRound(stateAt(r), recordOf(r));
        const report = await verifyChain(store);
        assert.deepEqual(report.damage, []);
        assert.equal(report.intact, 3);
        assert.ok(report.historyComplete);
        let rebuilt = initialState(K);
        for (let r = 1; r <= 3; r++) rebuilt = applyRound(rebuilt, (await store.loadRound(r)) as RoundRecord);
        const stored = bare(await store.loadState()) as FederationState;
        for (const v of ['residual', 'importanceSum', 'importanceCount'] as const) assert.deepEqual(rebuilt[v], stored[v], v);
        assert.deepEqual(
          Array.from(rebuilt.coefficients),
          [1, 2, 3].reduce((c, r) => c.map((x, j) => x + recordOf(r).change[j]), new Array<number>(K).fill(0)),
        );
      } finally {
        await store.close();
      }
    });

    test("a round's record altered behind the store's back is refused at open, naming that round", async () => {
      const { store, reopen, tamper } = await engine.fresh();
      await store.saveConfig(config);
      for (let r = 1; r <= 3; r++) await store.commitRound(stateAt(r), recordOf(r));
      await store.close();
      await tamper(2);
      await assert.rejects(reopen(), (err: Error) => {
        assert.match(err.message, /round 2's record does not match its hash/);
        assert.match(err.message, /rounds 1\.\.1 are intact, 2\.\.3 are not/);
        assert.match(err.message, /backup/);
        return true;
      });
    });

    test('a commit must advance the round by exactly one: a repeated, skipped or racing commit is refused and changes nothing', async () => {
      const { store } = await engine.fresh();
      try {
        await store.commitRound(stateAt(1), recordOf(1));
        await assert.rejects(store.commitRound(stateAt(1), recordOf(1)), StaleRoundError);
        await assert.rejects(store.commitRound(stateAt(3), recordOf(3)), StaleRoundError);
        // Two coordinators commit round 2 at once: exactly one lands.
        const other = { ...recordOf(2), participants: ['other'] };
        const outcomes = await Promise.allSettled([store.commitRound(stateAt(2), recordOf(2)), store.commitRound(stateAt(2), other)]);
        assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
        const refused = outcomes.find((o) => o.status === 'rejected');
        assert.ok(refused?.status === 'rejected' && refused.reason instanceof StaleRoundError);
        assert.equal(await store.committedRound(), 2);
        assert.deepEqual(bare(await store.loadState()), stateAt(2));
        assert.equal(await store.loadRound(3), null);
      } finally {
        await store.close();
      }
    });

    test("a retried upload is kept once; a commit drops its round's uploads and open-round record", async () => {
      const { store } = await engine.fresh();
      try {
        const open = { round: 1, attempt: 2, assigned: ['a', 'b'], deadlineAt: 1_700_000_123_456 };
        await store.saveOpenRound(open);
        assert.deepEqual(await store.loadOpenRound(), open);
        const frame = Uint8Array.from([1, 2, 3, 250]);
        assert.equal(await store.putUpload(1, 'a', frame), 'kept');
        assert.equal(await store.putUpload(1, 'a', Uint8Array.from([9])), 'duplicate');
        assert.equal(await store.putUpload(1, 'b', Uint8Array.from([7])), 'kept');
        assert.equal(await store.putUpload(2, 'b', Uint8Array.from([7])), 'closed', 'only the open round takes uploads');
        assert.equal(await store.uploadCount(1), 2);
        assert.equal(await store.uploadCount(2), 0);
        const kept = await store.loadUploads(1);
        assert.deepEqual([...kept.keys()].sort(), ['a', 'b']);
        assert.deepEqual(Array.from(kept.get('a') ?? []), [1, 2, 3, 250]);
        // A new attempt of the round starts with no uploads.
        await store.saveOpenRound({ ...open, attempt: 3 });
        assert.equal(await store.uploadCount(1), 0);
        assert.equal(await store.putUpload(1, 'a', frame), 'kept');
        await store.commitRound(stateAt(1), recordOf(1));
        assert.equal(await store.uploadCount(1), 0);
        assert.equal(await store.loadOpenRound(), null);
        // An upload that arrives after its round's commit is not kept.
        assert.equal(await store.putUpload(1, 'b', frame), 'closed');
        assert.equal(await store.uploadCount(1), 0);
      } finally {
        await store.close();
      }
    });

    test('tokens and presence read back as written', async () => {
      const { store } = await engine.fresh();
      try {
        const token = {
          id: '0123456789abcdef',
          label: 'laptop',
          salt: 'aa',
          hash: 'bb',
          createdAt: '2026-01-01T00:00:00.000Z',
          clientId: 'c1',
          maxExamples: 64,
        };
        await store.putToken(token);
        await store.putToken({ ...token, id: 'fedcba9876543210', clientId: undefined, maxExamples: undefined });
        assert.deepEqual(await store.getToken(token.id), token);
        assert.equal((await store.listTokens()).length, 2);
        assert.equal(await store.deleteToken(token.id), true);
        assert.equal(await store.deleteToken(token.id), false);
        assert.equal(await store.getToken(token.id), null);
        await store.setPresent('x', true);
        await store.setPresent('y', true);
        await store.setPresent('x', false);
        assert.deepEqual(await store.listPresent(), ['y']);
      } finally {
        await store.close();
      }
    });

    test('one store alone becomes the coordinator', async () => {
      const { store } = await engine.fresh();
      try {
        for (let i = 0; i < 100 && !store.coordinator; i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(store.coordinator, true);
      } finally {
        await store.close();
      }
    });
  });
}
