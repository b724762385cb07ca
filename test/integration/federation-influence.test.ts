// Bounded influence per client, against a real server on loopback, each case bounded in rounds and time.
// Colluders that send g = ±3e38 and claim 2³²−1 examples get their |g| clipped at a multiple of a scale
// kept across rounds, their Σ|g| bounded at τ × a multiple of it and their example count capped at a
// multiple of the historical median claim: the
// committed change stays within the multiple docs/federation.md states of an honest round's, also in a
// round where an honest client missed the deadline; one upload that names a seed τ times counts only the
// repeats an honest upload could hold. Every bounded client is named; the honest replicas stay equal.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FederationConfig, SeedGradient } from '../../protocol';
import type { ServerEvents } from '../../federation/events';
import { DEFAULT_ROBUSTNESS, repeatCap } from '../../federation/robust';
import { startServer, type FederationServer } from '../../federation/server';
import { createToken } from '../../federation/tokens';
import { FederationClient } from '../../federation/client/federation-client';
import { QuadraticToyTrainer } from '../../bench/toy-trainer';

const DIMENSION = 16;
const HUGE_G = 3e38;
const HUGE_CLAIM = 2 ** 32 - 1;
/**
 * The stated bound (docs/federation.md): with colluders at most half of a round's sampled clients, a
 * round's Σ|ΔC| stays within 2 × normClipMultiple (8×) an honest round's.
 */
const STATED_MULTIPLE = 2 * DEFAULT_ROBUSTNESS.normClipMultiple;

const base: FederationConfig = {
  k: 64,
  federationSeed: 5150,
  epsilon: 1e-3,
  eta: 0.05,
  tau: 8,
  batchSize: 1,
  sampling: 'uniform',
  weighting: 'examples',
  rounds: 5,
  clientsPerRound: 6,
  deadlineMs: 1500,
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Outcome {
  readonly changes: Float64Array[];
  readonly examples: number[];
  readonly participants: (readonly string[])[];
  readonly importanceCount: Float64Array[];
  readonly bounded: ServerEvents['uploadBounded'][0][];
  readonly honestDigests: string[];
  /** What each honest client uploaded, by round. */
  readonly honestPairs: Map<number, SeedGradient[][]>;
}

interface Spec {
  readonly id: string;
  /** Rewrites what the client uploads (a colluder), given the round. */
  readonly forge?: (round: number, pairs: SeedGradient[], examples: number) => { pairs: SeedGradient[]; examples: number };
  /** Rounds in which this honest client trains past the deadline. */
  readonly lateIn?: readonly number[];
}

async function runFederation(config: FederationConfig, specs: readonly Spec[]): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-influence-'));
  const model = new QuadraticToyTrainer({ dimension: DIMENSION, clientSeed: 0 });
  const server: FederationServer = await startServer({
    config,
    modelHash: model.modelHash,
    generatorVersion: 1,
    paramCount: DIMENSION,
    storePath: join(dir, 'store'),
    minClients: specs.length,
  });
  const bounded: Outcome['bounded'] = [];
  server.events.on('uploadBounded', (e) => bounded.push(e));
  const honestPairs = new Map<number, SeedGradient[][]>();
  try {
    const runs = await Promise.all(
      specs.map(async (s, n) => {
        const { token } = await createToken(server.store, s.id, s.id);
        const trainer = new QuadraticToyTrainer({ dimension: DIMENSION, clientSeed: 11 + n * 7 });
        const train = trainer.trainRound.bind(trainer);
        trainer.trainRound = async (request, onStep) => {
          const result = await train(request, onStep);
          if (s.lateIn?.includes(request.round)) await sleep(config.deadlineMs + 700);
          if (!s.forge) {
            const list = honestPairs.get(request.round) ?? [];
            list.push(result.pairs.map((p) => ({ ...p })));
            honestPairs.set(request.round, list);
            return result;
          }
          return { ...result, ...s.forge(request.round, [...result.pairs], result.examples) };
        };
        const client = new FederationClient({ url: server.url, clientId: s.id, token, trainer, backoff: { initialMs: 20, maxMs: 200, maxAttempts: 20 } });
        return { s, run: client.run() };
      }),
    );
    const results = await Promise.all(runs.map((r) => r.run));
    const honestDigests = results.filter((_, i) => !specs[i].forge).map((r) => r.digest);
    const changes: Float64Array[] = [];
    const examples: number[] = [];
    const participants: (readonly string[])[] = [];
    const importanceCount: Float64Array[] = [];
    let count: Float64Array = new Float64Array(config.k);
    for (let r = 1; r <= config.rounds; r++) {
      const record = await server.store.loadRound(r);
      assert.ok(record, `round ${r} is committed`);
      changes.push(record.change);
      examples.push(record.examples);
      participants.push(record.participants);
      // The importance counts after round r, rebuilt from the record's history.
      const after = record.after?.importanceCount;
      assert.ok(after, `round ${r}'s record keeps its history`);
      count = new Float64Array(count);
      after.indices.forEach((j, i) => (count[j] = after.values[i]));
      importanceCount.push(count);
    }
    return { changes, examples, participants, importanceCount, bounded, honestDigests, honestPairs };
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const l1 = (v: Float64Array): number => v.reduce((s, x) => s + Math.abs(x), 0);
const linf = (v: Float64Array): number => v.reduce((s, x) => Math.max(s, Math.abs(x)), 0);
const mean = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

/** A colluder: every g ±3e38 (signs alternating), 2³²−1 examples claimed. */
const colluder = (id: string): Spec => ({
  id,
  forge: (_round, pairs) => ({ pairs: pairs.map((p, i) => ({ seed: p.seed, g: i % 2 === 0 ? HUGE_G : -HUGE_G })), examples: HUGE_CLAIM }),
});
const honestIds = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];

let honestBaseline: Promise<Outcome> | null = null;
/** Six honest clients, the same configuration: what an honest round changes. */
const baseline = (): Promise<Outcome> =>
  (honestBaseline ??= runFederation(
    base,
    honestIds.map((id) => ({ id })),
  ));

function assertWithinStatedMultiple(adversarial: Outcome, honest: Outcome, what: string): { ratio: number; linfRatio: number } {
  const honestL1 = mean(honest.changes.map(l1));
  const honestLinf = mean(honest.changes.map(linf));
  assert.ok(honestL1 > 0, 'honest rounds change C');
  let ratio = 0;
  let linfRatio = 0;
  adversarial.changes.forEach((c, i) => {
    ratio = Math.max(ratio, l1(c) / honestL1);
    linfRatio = Math.max(linfRatio, linf(c) / honestLinf);
    assert.ok(
      l1(c) <= STATED_MULTIPLE * honestL1,
      `${what}, round ${i + 1}: Σ|ΔC| = ${l1(c)}, ${(l1(c) / honestL1).toFixed(1)}× an honest round's ${honestL1.toFixed(0)}`,
    );
  });
  return { ratio, linfRatio };
}

test(
  '3 colluders of 6 with g = ±3e38 and 2³²−1 examples: every committed change within the stated multiple of an honest round, the colluders named, honest replicas equal',
  { timeout: 90_000 },
  async () => {
    const honest = await baseline();
    assert.equal(new Set(honest.honestDigests).size, 1);
    const colluders = ['mallory', 'trudy', 'eve'];
    const attacked = await runFederation(base, [...honestIds.slice(0, 3).map((id) => ({ id })), ...colluders.map(colluder)]);
    const { ratio, linfRatio } = assertWithinStatedMultiple(attacked, honest, '3 colluders of 6');
    console.log(
      `3 colluders of 6: largest Σ|ΔC| ${ratio.toFixed(2)}× an honest round's, largest |ΔC_j| ${linfRatio.toFixed(2)}× (stated bound ${STATED_MULTIPLE}×)`,
    );
    assert.equal(new Set(attacked.honestDigests).size, 1, 'the honest replicas end bit-identical');
    for (let r = 1; r <= base.rounds; r++) {
      const named = new Set(
        attacked.bounded.filter((e) => e.round === r && (e.clipped > 0 || e.scaledBy < 1 || e.countedExamples < e.claimedExamples)).map((e) => e.clientId),
      );
      for (const c of colluders) assert.ok(named.has(c), `round ${r}: ${c} is named`);
      for (const h of honestIds.slice(0, 3)) assert.ok(!named.has(h), `round ${r}: honest ${h} is not bounded`);
    }
  },
);

test(
  'one liar of 6 with g = ±3e38 and a 2³²−1 example claim: within the stated multiple, its claim counted at the cap, named',
  { timeout: 90_000 },
  async () => {
    const honest = await baseline();
    const attacked = await runFederation(base, [...honestIds.slice(0, 5).map((id) => ({ id })), colluder('mallory')]);
    const { ratio, linfRatio } = assertWithinStatedMultiple(attacked, honest, 'one liar of 6');
    console.log(`one liar of 6: largest Σ|ΔC| ${ratio.toFixed(2)}× an honest round's, largest |ΔC_j| ${linfRatio.toFixed(2)}×`);
    const cap = DEFAULT_ROBUSTNESS.examplesMedianMultiple * base.tau * base.batchSize;
    for (let r = 1; r <= base.rounds; r++) {
      const e = attacked.bounded.filter((x) => x.round === r);
      assert.deepEqual(
        e.map((x) => x.clientId),
        ['mallory'],
        `round ${r}: the liar, and only it, is named`,
      );
      assert.equal(e[0].countedExamples, cap, `round ${r}: its 2³²−1 claim counts ${cap}`);
    }
    assert.equal(new Set(attacked.honestDigests).size, 1, 'the honest replicas end bit-identical');
  },
);

test(
  'an honest client missing the deadline does not unclip the colluders: the round stays within the stated multiple and each 2³²−1 claim counts at most the cap',
  { timeout: 90_000 },
  async () => {
    const honest = await baseline();
    const colluders = ['mallory', 'trudy', 'eve'];
    const attacked = await runFederation(base, [{ id: 'alice' }, { id: 'bob' }, { id: 'carol', lateIn: [2, 3] }, ...colluders.map(colluder)]);
    for (const r of [2, 3]) assert.ok(!attacked.participants[r - 1].includes('carol'), `carol missed round ${r}'s deadline`);
    const { ratio } = assertWithinStatedMultiple(attacked, honest, 'an honest client late');
    console.log(`3 colluders of 6, an honest client late in rounds 2 and 3: largest Σ|ΔC| ${ratio.toFixed(2)}× an honest round's`);
    // Honest clients claim τ·batchSize examples; a claim counts at most examplesMedianMultiple × the historical median claim.
    const claim = base.tau * base.batchSize;
    const cap = DEFAULT_ROBUSTNESS.examplesMedianMultiple * claim;
    attacked.examples.forEach((examples, i) => {
      const honestUploads = attacked.participants[i].filter((id) => !colluders.includes(id)).length;
      assert.ok(examples <= honestUploads * claim + colluders.length * cap, `round ${i + 1}: ${examples} examples counted`);
    });
    for (const r of [2, 3]) {
      for (const c of colluders) {
        const e = attacked.bounded.find((x) => x.round === r && x.clientId === c);
        assert.ok(e && e.clipped > 0, `round ${r}: ${c}'s g are clipped and it is named`);
        assert.ok(e.countedExamples <= cap, `round ${r}: ${c}'s 2³²−1 claim counts ${e.countedExamples} ≤ ${cap}`);
      }
    }
    assert.equal(new Set(attacked.honestDigests).size, 1, 'the honest replicas end bit-identical');
  },
);

test('one upload naming the same seed τ times counts only the repeats an honest upload could hold; its client is named', { timeout: 90_000 }, async () => {
  const config: FederationConfig = { ...base, k: 64, tau: 32, clientsPerRound: 4, rounds: 3 };
  const SEED = 7;
  const cap = repeatCap(config.tau, 1 / config.k, DEFAULT_ROBUSTNESS.repeatSlack);
  assert.ok(cap < config.tau, `the cap ${cap} is below τ = ${config.tau}`);
  const repeater: Spec = { id: 'rita', forge: (_round, pairs) => ({ pairs: pairs.map((p) => ({ seed: SEED, g: Math.abs(p.g) })), examples: config.tau }) };
  const outcome = await runFederation(config, [{ id: 'alice' }, { id: 'bob' }, { id: 'carol' }, repeater]);
  let before: Float64Array = new Float64Array(config.k);
  for (let r = 1; r <= config.rounds; r++) {
    const honestTimes = (outcome.honestPairs.get(r) ?? []).reduce((s, pairs) => s + pairs.filter((p) => p.seed === SEED).length, 0);
    const counted = outcome.importanceCount[r - 1][SEED] - before[SEED];
    assert.equal(counted, honestTimes + cap, `round ${r}: seed ${SEED} counted ${counted} times (honest ${honestTimes}, cap ${cap})`);
    before = outcome.importanceCount[r - 1];
    const e = outcome.bounded.find((x) => x.round === r && x.clientId === 'rita');
    assert.ok(e, `round ${r}: rita is named`);
    assert.equal(e.repeatsDropped, config.tau - cap);
    assert.ok(!outcome.bounded.some((x) => x.round === r && x.clientId !== 'rita' && x.repeatsDropped > 0), 'no honest repeat is dropped');
  }
  assert.equal(new Set(outcome.honestDigests).size, 1, 'the honest replicas end bit-identical');
});

test(
  'a restarted server takes its scales from the committed records: colluders that attack right after a restart are bounded by the history',
  { timeout: 90_000 },
  async () => {
    const config: FederationConfig = { ...base, rounds: 6 };
    const dir = mkdtempSync(join(tmpdir(), 'fedk-influence-restart-'));
    const model = new QuadraticToyTrainer({ dimension: DIMENSION, clientSeed: 0 });
    const serve = (port = 0) =>
      startServer({ config, modelHash: model.modelHash, generatorVersion: 1, paramCount: DIMENSION, storePath: join(dir, 'store'), minClients: 6, port });
    try {
      const first = await serve();
      const colluders = ['mallory', 'trudy', 'eve'];
      const clients = await Promise.all(
        [...honestIds.slice(0, 3), ...colluders].map(async (id, n) => {
          const { token } = await createToken(first.store, id, id);
          const trainer = new QuadraticToyTrainer({ dimension: DIMENSION, clientSeed: 11 + n * 7 });
          if (colluders.includes(id)) {
            // Honest until the restart, then g = ±3e38 and 2³²−1 examples.
            const train = trainer.trainRound.bind(trainer);
            trainer.trainRound = async (request, onStep) => {
              const result = await train(request, onStep);
              if (request.round <= 3) return result;
              return { ...result, pairs: result.pairs.map((p, i) => ({ seed: p.seed, g: i % 2 === 0 ? HUGE_G : -HUGE_G })), examples: HUGE_CLAIM };
            };
          }
          return new FederationClient({ url: first.url, clientId: id, token, trainer, backoff: { initialMs: 20, maxMs: 100, maxAttempts: 500 } });
        }),
      );
      const third = new Promise<void>((resolve) => first.events.on('roundCommitted', (e) => e.round === 3 && resolve()));
      const runs = Promise.all(clients.map((c) => c.run()));
      await third;
      await first.close();
      const second = await serve(first.port);
      const bounded: ServerEvents['uploadBounded'][0][] = [];
      second.events.on('uploadBounded', (e) => bounded.push(e));
      try {
        const results = await runs;
        assert.equal(new Set(results.slice(0, 3).map((r) => r.digest)).size, 1, 'the honest replicas end bit-identical');
        const records = await Promise.all([1, 2, 3, 4, 5, 6].map((r) => second.store.loadRound(r)));
        const stats = records.slice(0, 3).map((r) => r?.after?.robust);
        for (const s of stats) assert.ok(s && s.absG > 0 && s.examples > 0, `rounds 1..3 keep their statistics: ${JSON.stringify(s)}`);
        const absG = stats.map((s) => s?.absG ?? 0).sort((a, b) => a - b)[1];
        const examples = stats.map((s) => s?.examples ?? 0).sort((a, b) => a - b)[1];
        const round4 = bounded.filter((e) => e.round === 4);
        assert.deepEqual(round4.map((e) => e.clientId).sort(), [...colluders].sort(), 'round 4 names the colluders, and only them');
        for (const e of round4) {
          assert.equal(e.gBound, DEFAULT_ROBUSTNESS.gClipMultiple * absG, `${e.clientId}: the |g| bound is the history's`);
          assert.equal(e.examplesBound, DEFAULT_ROBUSTNESS.examplesMedianMultiple * examples, `${e.clientId}: the example cap is the history's`);
          assert.equal(e.countedExamples, DEFAULT_ROBUSTNESS.examplesMedianMultiple * examples);
        }
        const honestL1 = mean(records.slice(0, 3).map((r) => l1(r?.change ?? new Float64Array())));
        records
          .slice(3)
          .forEach((r, i) =>
            assert.ok(
              l1(r?.change ?? new Float64Array()) <= STATED_MULTIPLE * honestL1,
              `round ${i + 4}: Σ|ΔC| ${(l1(r?.change ?? new Float64Array()) / honestL1).toFixed(1)}× the honest rounds'`,
            ),
          );
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
