// One client cannot halt or steer the federation: its |g| is bounded by a multiple of the round's
// median, its example count by a multiple of the round's (lower) median and an absolute cap, and a round
// that would still leave the replicas' exact range drops the upload responsible, names its client, and
// commits with the others instead of halting.
import { strict as assert } from 'node:assert';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { Clock, Timer } from '../../federation/clock';
import type { ServerEvents } from '../../federation/events';
import { aggregateContributions, robustAggregate } from '../../federation/aggregate';
import { boundRound, DEFAULT_ROBUSTNESS, HISTORY_ROUNDS, historyScales, lowerMedian, median, repeatCap } from '../../federation/robust';
import { RoundEngine, type Outbox, type RoundEngineOptions } from '../../federation/round-engine';
import { ErrorCode, type FederationConfig, type HelloMessage, type SeedGradient, type ServerMessage, type UploadMessage } from '../../protocol';
import { MemoryFederationStore } from '../helpers/memory-store';

const MODEL_HASH = new Uint8Array(32).fill(7);
const config: FederationConfig = {
  k: 32,
  federationSeed: 9,
  epsilon: 1e-3,
  eta: 1e-3,
  tau: 4,
  batchSize: 1,
  sampling: 'pro',
  weighting: 'examples',
  rounds: 3,
  clientsPerRound: 3,
  deadlineMs: 1000,
};

const noClock: Clock = { now: () => 0, setTimer: (): Timer => ({ cancel: () => {} }) };
interface Peer {
  readonly id: string;
  readonly inbox: ServerMessage[];
}
const outbox: Outbox<Peer> = {
  send: (to, m) => void to.inbox.push(m),
  refuse: (to, code, message) => void to.inbox.push({ type: 'error', code, message }),
  displace: () => {},
};
const settle = async (): Promise<void> => {
  for (let i = 0; i < 8; i++) await new Promise<void>((r) => setImmediate(r));
};

async function engineWith(over: Partial<RoundEngineOptions<Peer>> = {}) {
  const events = new EventEmitter<ServerEvents>();
  const store = new MemoryFederationStore();
  const engine = await RoundEngine.open<Peer>({
    config,
    store,
    clock: noClock,
    outbox,
    events,
    log: () => {},
    modelHash: MODEL_HASH,
    generatorVersion: 1,
    paramCount: 100,
    ...over,
  });
  const peers = ['a', 'b', 'c'].map((id) => ({ id, inbox: [] as ServerMessage[] }));
  for (const p of peers) {
    const hello: HelloMessage = { type: 'hello', clientId: p.id, token: '', modelHash: MODEL_HASH, lastSyncedRound: 0, generatorVersion: 1 };
    await engine.join(p, hello);
  }
  await settle();
  return { engine, store, events, peers };
}

const upload = (round: number, examples: number, pairs: SeedGradient[]): UploadMessage => ({
  type: 'upload',
  round,
  examples,
  lossBeforeSum: 1,
  lossBeforeCount: 1,
  lossAfterSum: 1,
  lossAfterCount: 1,
  digestRound: round - 1,
  digest: new Uint8Array(32),
  pairs,
});
const honest = (s: number): SeedGradient[] => [1, 2, 3, 4].map((seed) => ({ seed: seed + s, g: 0.5 + seed / 10 }));

test('lower median and bounds: |g| clipped at a multiple of the median, examples at a multiple of the lower median', () => {
  assert.equal(lowerMedian([4, 2 ** 32 - 1]), 4);
  assert.equal(lowerMedian([3, 1, 2]), 2);
  // The first round has no history: its own statistics over the sampled clients make the scales.
  const bounded = boundRound(
    {
      uploads: [
        { examples: 4, pairs: honest(0) },
        { examples: 4, pairs: honest(4) },
        {
          examples: 2 ** 32 - 1,
          pairs: [
            { seed: 20, g: 3e38 },
            { seed: 21, g: -3e38 },
          ],
        },
      ],
      missing: 0,
      history: [],
      repeatCap: Infinity,
      tau: 4,
    },
    DEFAULT_ROBUSTNESS,
  );
  assert.ok(bounded.gBound < 100, `g bound ${bounded.gBound}`);
  for (const u of bounded.uploads) for (const p of u.contribution.pairs) assert.ok(Math.abs(p.g) <= bounded.gBound);
  assert.equal(bounded.uploads[2].contribution.examples, 16);
  assert.equal(bounded.uploads[0].contribution.examples, 4);
  assert.equal(bounded.uploads[2].clipped, 2);
});

const colluding = (examples: number, g: number): { examples: number; pairs: SeedGradient[] } => ({
  examples,
  pairs: [1, 2, 3, 4].map((seed) => ({ seed: 40 + seed, g })),
});

test('the scales come from the history, not from the round: colluders that are most of its uploads (a client missed the deadline) are still clipped', () => {
  const history = [
    { absG: 0.7, examples: 4 },
    { absG: 0.8, examples: 4 },
    { absG: 0.6, examples: 4 },
  ];
  // 3 colluders, 2 honest uploads, 1 sampled client without one.
  const bounded = boundRound(
    {
      uploads: [
        { examples: 4, pairs: honest(0) },
        { examples: 4, pairs: honest(4) },
        colluding(2 ** 32 - 1, 3e38),
        colluding(2 ** 32 - 1, -3e38),
        colluding(2 ** 32 - 1, 3e38),
      ],
      missing: 1,
      history,
      repeatCap: Infinity,
      tau: 4,
    },
    DEFAULT_ROBUSTNESS,
  );
  assert.equal(bounded.scales.absG, 0.7);
  assert.equal(bounded.gBound, DEFAULT_ROBUSTNESS.gClipMultiple * 0.7);
  assert.equal(bounded.examplesBound, DEFAULT_ROBUSTNESS.examplesMedianMultiple * 4);
  for (const u of bounded.uploads.slice(2)) {
    assert.equal(u.clipped, 4);
    assert.equal(u.contribution.examples, 16);
    // …and their Σ|g| brought within τ × normClipMultiple × the scale, all g scaled together.
    assert.equal(bounded.normBound, 4 * DEFAULT_ROBUSTNESS.normClipMultiple * 0.7);
    assert.ok(u.scaledBy < 1);
    assert.ok(Math.abs(u.contribution.pairs.reduce((s, p) => s + Math.abs(p.g), 0) - bounded.normBound) <= 1e-12);
  }
  for (const u of bounded.uploads.slice(0, 2))
    assert.deepEqual([u.clipped, u.scaledBy, u.contribution.examples], [0, 1, 4], 'the honest uploads are untouched');
  // What this round adds to the history stays within a factor gClipMultiple of the scale.
  assert.ok(bounded.statistics.absG <= DEFAULT_ROBUSTNESS.gClipMultiple * 0.7);
  // Without a history the round's own statistics count a missing client as 0: the colluders are still not the median.
  const first = boundRound(
    {
      uploads: [
        { examples: 4, pairs: honest(0) },
        { examples: 4, pairs: honest(4) },
        colluding(2 ** 32 - 1, 3e38),
        colluding(2 ** 32 - 1, -3e38),
        colluding(2 ** 32 - 1, 3e38),
      ],
      missing: 1,
      history: [],
      repeatCap: Infinity,
      tau: 4,
    },
    DEFAULT_ROBUSTNESS,
  );
  assert.ok(first.gBound < 100, `first round's g bound ${first.gBound}`);
  assert.equal(first.examplesBound, 16);
});

test('the scale never collapses to 0: rounds of zero g or without uploads count for nothing, and a statistic enters within a factor of the scale', () => {
  assert.deepEqual(
    historyScales([
      { absG: 0, examples: 0 },
      { absG: 0.5, examples: 8 },
      { absG: 0, examples: 0 },
    ]),
    { absG: 0.5, examples: 8 },
  );
  assert.ok(Number.isNaN(historyScales([{ absG: 0, examples: 0 }]).absG));
  // Only the last HISTORY_ROUNDS rounds count.
  const old = Array.from({ length: HISTORY_ROUNDS }, () => ({ absG: 1, examples: 1 }));
  assert.equal(historyScales([{ absG: 1000, examples: 1000 }, ...old]).absG, 1);
  // Every upload sends g = 0 (or none): the scale stays the history's and nothing enters it.
  const zero = boundRound(
    { uploads: [colluding(4, 0), colluding(4, 0), colluding(4, 0)], missing: 0, history: [{ absG: 0.5, examples: 4 }], repeatCap: Infinity, tau: 4 },
    DEFAULT_ROBUSTNESS,
  );
  assert.equal(zero.gBound, DEFAULT_ROBUSTNESS.gClipMultiple * 0.5);
  assert.equal(zero.statistics.absG, 0);
  // Tiny g enter the history no lower than scale / gClipMultiple.
  const tiny = boundRound(
    {
      uploads: [colluding(4, 1e-30), colluding(4, 1e-30), colluding(4, 1e-30)],
      missing: 0,
      history: [{ absG: 0.5, examples: 4 }],
      repeatCap: Infinity,
      tau: 4,
    },
    DEFAULT_ROBUSTNESS,
  );
  assert.equal(tiny.statistics.absG, 0.5 / DEFAULT_ROBUSTNESS.gClipMultiple);
  // The first round, half its sampled clients without an upload: the positive values uploaded give the scale.
  const sparse = boundRound({ uploads: [{ examples: 4, pairs: honest(0) }], missing: 2, history: [], repeatCap: Infinity, tau: 4 }, DEFAULT_ROBUSTNESS);
  assert.ok(sparse.gBound > 0 && Number.isFinite(sparse.gBound));
});

test('repeats of one seed beyond the cap are dropped; the cap holds an honest upload', () => {
  // Uniform, τ = 200 of K = 4096: λ ≈ 0.05.
  assert.equal(repeatCap(200, 1 / 4096, 4), 5);
  assert.equal(repeatCap(32, 1 / 64, 4), 8);
  assert.equal(repeatCap(32, 1 / 64, Infinity), Infinity);
  const bounded = boundRound(
    {
      uploads: [
        { examples: 4, pairs: Array.from({ length: 32 }, () => ({ seed: 7, g: 0.5 })) },
        { examples: 4, pairs: honest(0) },
      ],
      missing: 0,
      history: [],
      repeatCap: 8,
      tau: 32,
    },
    DEFAULT_ROBUSTNESS,
  );
  assert.equal(bounded.uploads[0].contribution.pairs.length, 8);
  assert.equal(bounded.uploads[0].repeatsDropped, 24);
  assert.equal(bounded.uploads[1].repeatsDropped, 0);
});

test('a seed named by enough clients changes by the median of their sums; elsewhere by the weighted sum, bit for bit', () => {
  const cs = [
    {
      examples: 1,
      pairs: [
        { seed: 0, g: 1 },
        { seed: 1, g: 2 },
      ],
    },
    { examples: 1, pairs: [{ seed: 0, g: 2 }] },
    {
      examples: 1,
      pairs: [
        { seed: 0, g: 1e6 },
        { seed: 0, g: 1 },
      ],
    },
  ];
  const d = robustAggregate(cs, 4, 'examples', 3);
  // Seed 0: sums 1, 2, 1e6 + 1; median 2, weight 3 × 1/3.
  assert.equal(d[0], 2);
  assert.equal(d[1], 2 / 3);
  assert.deepEqual([...robustAggregate(cs, 4, 'examples', Infinity)], [...aggregateContributions(cs, 4, 'examples')]);
  assert.equal(median([1, 2, 3, 4]), 2.5);
  // Random rounds against the rule written plainly: per seed, the weighted sum, or W_j × the median of the sums.
  let state = 7;
  const rand = (n: number): number => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) % n;
  for (let trial = 0; trial < 200; trial++) {
    const k = 1 + rand(12);
    const list = Array.from({ length: 1 + rand(7) }, () => ({
      examples: rand(4),
      pairs: Array.from({ length: rand(6) }, () => ({ seed: rand(k), g: rand(2001) / 100 - 10 })),
    }));
    const from = 2 + rand(3);
    const total = list.reduce((t, c) => t + c.examples, 0);
    const w = list.map((c) => (total > 0 ? c.examples / total : 1 / list.length));
    const expected = new Float64Array(k);
    for (let j = 0; j < k; j++) {
      const naming = list
        .map((c, i) => ({ i, sum: c.pairs.filter((p) => p.seed === j).reduce((t, p) => t + p.g, 0), names: c.pairs.some((p) => p.seed === j) }))
        .filter((x) => x.names && w[x.i] > 0);
      if (naming.length >= from) expected[j] = naming.reduce((t, x) => t + w[x.i], 0) * median(naming.map((x) => x.sum));
      else list.forEach((c, i) => c.pairs.forEach((p) => p.seed === j && w[i] > 0 && (expected[j] += w[i] * p.g)));
    }
    const got = robustAggregate(list, k, 'examples', from);
    for (let j = 0; j < k; j++)
      assert.ok(Math.abs(got[j] - expected[j]) <= 1e-9 * Math.max(1, Math.abs(expected[j])), `trial ${trial}, seed ${j}: ${got[j]} ≠ ${expected[j]}`);
  }
});

test('g = 3e38 and 2^32 − 1 examples from one client: the round commits with a bounded change and the federation runs on', async () => {
  const { engine, store, events, peers } = await engineWith();
  let halted = false;
  events.on('halted', () => (halted = true));
  for (let round = 1; round <= 3; round++) {
    await engine.upload(peers[0], 'a', upload(round, 4, honest(0)));
    await engine.upload(peers[1], 'b', upload(round, 4, honest(4)));
    await engine.upload(
      peers[2],
      'c',
      upload(round, 2 ** 32 - 1, [
        { seed: 1, g: 3e38 },
        { seed: 20, g: 3e38 },
      ]),
    );
    await settle();
    assert.equal(store.state?.round, round, `round ${round} committed`);
  }
  assert.equal(halted, false);
  const c = store.state?.coefficients as Float64Array;
  // The attacker's seed 20 moved no more than the bound allows with at most its capped weight.
  const honestMax = Math.max(...[1, 2, 3, 4, 5, 6, 7, 8].map((j) => Math.abs(c[j])));
  assert.ok(Math.abs(c[20]) <= 64 * honestMax, `seed 20: ${c[20]}, honest seeds up to ${honestMax}`);
  // Pro importance of the attacker's seed stays within the reference's ±1000 clip.
  assert.ok((store.state?.importanceSum[20] ?? 0) <= 3 * 1000);
});

test('a round that would leave the exact range drops the upload responsible, names its client, and commits the rest', async () => {
  // Bounds off: only the exact-range check stands between the huge g and the coefficients.
  const { engine, store, events, peers } = await engineWith({
    robustness: {
      gClipMultiple: Infinity,
      normClipMultiple: Infinity,
      maxAbsG: Infinity,
      maxExamples: Infinity,
      examplesMedianMultiple: Infinity,
      repeatSlack: Infinity,
      seedMedianClients: Infinity,
    },
  });
  const excluded: { round: number; clientId: string }[] = [];
  events.on('uploadExcluded', (e) => excluded.push(e));
  let halted = false;
  events.on('halted', () => (halted = true));
  for (let round = 1; round <= 3; round++) {
    await engine.upload(peers[0], 'a', upload(round, 4, honest(0)));
    await engine.upload(peers[1], 'b', upload(round, 4, honest(4)));
    await engine.upload(peers[2], 'c', upload(round, 4, [{ seed: 20, g: 3e38 }]));
    await settle();
    assert.equal(store.state?.round, round, `round ${round} committed`);
    assert.deepEqual(store.rounds.get(round)?.participants, ['a', 'b']);
  }
  assert.equal(halted, false);
  assert.deepEqual(
    excluded.map((e) => [e.round, e.clientId]),
    [
      [1, 'c'],
      [2, 'c'],
      [3, 'c'],
    ],
  );
  assert.equal(store.state?.coefficients[20], 0);
});

test('the reference digest is the one a quorum of clients reports, not the first; a disagreeing client is told', async () => {
  const { engine, store, events, peers } = await engineWith();
  const mismatches: string[] = [];
  events.on('digestMismatch', (e) => mismatches.push(e.clientId));
  const withDigest = (round: number, fill: number): UploadMessage => ({ ...upload(round, 4, honest(0)), digest: new Uint8Array(32).fill(fill) });
  // Round 1's uploads report the digest of round 0: 'a' first with a bad one, then 'b' and 'c' agree.
  await engine.upload(peers[0], 'a', withDigest(1, 9));
  await engine.upload(peers[1], 'b', withDigest(1, 1));
  await engine.upload(peers[2], 'c', withDigest(1, 1));
  await settle();
  assert.equal(await store.loadDigest(0), Buffer.alloc(32, 1).toString('hex'));
  assert.deepEqual(mismatches, ['a']);
  const acks = (p: Peer) => p.inbox.flatMap((m) => (m.type === 'ack' ? [m.digest] : []));
  assert.deepEqual(acks(peers[0]), ['pending']);
  assert.deepEqual(acks(peers[2]), ['reference']);
  // 'a' is told once the quorum decided against it.
  assert.ok(peers[0].inbox.some((m) => m.type === 'error' && m.code === ErrorCode.DigestMismatch));
});

test('a client whose upload alone got a round refused is not sampled again for that round; the federation runs on', async () => {
  const events = new EventEmitter<ServerEvents>();
  const store = new MemoryFederationStore();
  const one: FederationConfig = { ...config, clientsPerRound: 1, rounds: 12 };
  const engine = await RoundEngine.open<Peer>({
    config: one,
    store,
    clock: noClock,
    outbox,
    events,
    log: () => {},
    modelHash: MODEL_HASH,
    generatorVersion: 1,
    paramCount: 100,
    minClients: 1,
  });
  const peers = new Map(['a', 'b'].map((id) => [id, { id, inbox: [] as ServerMessage[] }]));
  const started: { round: number; attempt: number; clients: readonly string[] }[] = [];
  const restarted: string[] = [];
  events.on('roundStarted', (e) => started.push(e));
  events.on('roundRestarted', (e) => restarted.push(e.reason));
  let halted = false;
  events.on('halted', () => (halted = true));
  for (const p of peers.values())
    await engine.join(p, { type: 'hello', clientId: p.id, token: '', modelHash: MODEL_HASH, lastSyncedRound: 0, generatorVersion: 1 });
  await settle();
  for (let guard = 0; guard < 100 && !engine.finished && !halted; guard++) {
    const open = engine.openRound;
    assert.ok(open, 'a round is open');
    const id = open.assigned[0];
    // 'a' diverges: a g no replica can take, whatever the bounds (its own median is its scale).
    const pairs = id === 'a' ? [{ seed: 5, g: 3e38 }] : honest(0);
    await engine.upload(peers.get(id) as Peer, id, upload(open.round, 4, pairs));
    await settle();
  }
  assert.equal(halted, false, restarted.join(' | '));
  assert.equal(store.state?.round, 12);
  for (const [i, s] of started.entries()) {
    if (s.attempt > 0 && started[i - 1]?.round === s.round) assert.deepEqual(s.clients, ['b'], `round ${s.round} attempt ${s.attempt}`);
  }
  assert.ok(restarted.some((r) => /the upload of a/.test(r)));
});

test("an operator's per-token example cap holds whatever the client claims", async () => {
  const events = new EventEmitter<ServerEvents>();
  const store = new MemoryFederationStore();
  const off = {
    gClipMultiple: Infinity,
    normClipMultiple: Infinity,
    maxAbsG: Infinity,
    maxExamples: Infinity,
    examplesMedianMultiple: Infinity,
    repeatSlack: Infinity,
    seedMedianClients: Infinity,
  };
  const engine = await RoundEngine.open<Peer>({
    config,
    store,
    clock: noClock,
    outbox,
    events,
    log: () => {},
    modelHash: MODEL_HASH,
    generatorVersion: 1,
    paramCount: 100,
    robustness: off,
  });
  const peers = ['a', 'b', 'c'].map((id) => ({ id, inbox: [] as ServerMessage[] }));
  for (const p of peers) {
    await engine.join(
      p,
      { type: 'hello', clientId: p.id, token: '', modelHash: MODEL_HASH, lastSyncedRound: 0, generatorVersion: 1 },
      p.id === 'c' ? { maxExamples: 4 } : {},
    );
  }
  await settle();
  await engine.upload(peers[0], 'a', upload(1, 4, honest(0)));
  await engine.upload(peers[1], 'b', upload(1, 4, honest(4)));
  await engine.upload(peers[2], 'c', upload(1, 1e9, honest(8)));
  await settle();
  assert.equal(store.rounds.get(1)?.examples, 12);
});

test('each round keeps its statistics in its record; a restarted engine takes its scales from them and bounds colluders the same', async () => {
  const five: FederationConfig = { ...config, rounds: 5, sampling: 'uniform' };
  const store = new MemoryFederationStore();
  const open = async () => {
    const events = new EventEmitter<ServerEvents>();
    const engine = await RoundEngine.open<Peer>({
      config: five,
      store,
      clock: noClock,
      outbox,
      events,
      log: () => {},
      modelHash: MODEL_HASH,
      generatorVersion: 1,
      paramCount: 100,
    });
    const peers = ['a', 'b', 'c'].map((id) => ({ id, inbox: [] as ServerMessage[] }));
    for (const p of peers)
      await engine.join(p, { type: 'hello', clientId: p.id, token: '', modelHash: MODEL_HASH, lastSyncedRound: store.state?.round ?? 0, generatorVersion: 1 });
    await settle();
    return { engine, events, peers };
  };
  const first = await open();
  for (let round = 1; round <= 3; round++) {
    for (const [i, p] of first.peers.entries()) await first.engine.upload(p, p.id, upload(round, 4, honest(4 * i)));
    await settle();
  }
  assert.equal(store.state?.round, 3);
  const statistics = [1, 2, 3].map((r) => store.rounds.get(r)?.after?.robust);
  for (const s of statistics) assert.ok(s && s.absG > 0 && s.examples === 4, JSON.stringify(s));
  first.engine.close();
  // Restarted: round 4 has 2 colluders of 3 (beyond the design, most of the round): still bounded by the history.
  const second = await open();
  const bounded: ServerEvents['uploadBounded'][0][] = [];
  second.events.on('uploadBounded', (e) => bounded.push(e));
  await second.engine.upload(second.peers[0], 'a', upload(4, 4, honest(0)));
  await second.engine.upload(second.peers[1], 'b', upload(4, 2 ** 32 - 1, [{ seed: 30, g: 3e38 }]));
  await second.engine.upload(second.peers[2], 'c', upload(4, 2 ** 32 - 1, [{ seed: 31, g: -3e38 }]));
  await settle();
  assert.equal(store.state?.round, 4);
  const scale = lowerMedian(statistics.map((s) => s?.absG ?? 0));
  assert.deepEqual(
    bounded.map((e) => [e.clientId, e.gBound, e.countedExamples]),
    [
      ['b', DEFAULT_ROBUSTNESS.gClipMultiple * scale, 16],
      ['c', DEFAULT_ROBUSTNESS.gClipMultiple * scale, 16],
    ],
  );
  assert.equal(store.rounds.get(4)?.examples, 4 + 16 + 16);
});
