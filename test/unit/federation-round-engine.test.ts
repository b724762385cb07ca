// The round engine without sockets: seeded random federations driven by method calls on a fake clock,
// with clients that upload, stay silent past the deadline, leave and come back. What must hold in every
// one of them: the aggregation weights sum to 1, error feedback conserves the total (exactly on dyadic
// grids), a refused round changes no committed state and three in a row halt, a client that misses the
// deadline is dropped while the round commits with the others, and every replica built from what the
// engine sent equals the committed coefficients.
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { aggregationWeights, type ClientContribution } from '../../federation/aggregate';
import type { Clock, Timer } from '../../federation/clock';
import type { ServerEvents } from '../../federation/events';
import { RoundEngine, type Outbox } from '../../federation/round-engine';
import {
  COEFFICIENT_SCALE,
  expandDelta,
  type FederationConfig,
  type HelloMessage,
  type SeedGradient,
  type ServerMessage,
  type UploadMessage,
} from '../../protocol';
import { createRng, type Rng } from '../../trainer/data/rng';
import { MemoryFederationStore } from '../helpers/memory-store';

const MODEL_HASH = new Uint8Array(32).fill(7);
const GENERATOR_VERSION = 1;

class FakeClock implements Clock {
  private t = 1_700_000_000_000;
  private timers: { at: number; fire: () => void; cancelled: boolean }[] = [];

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fire: () => void): Timer {
    const timer = { at: this.t + ms, fire, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  /** Moves time on, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => !x.cancelled && x.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.t = due.at;
      due.cancelled = true;
      due.fire();
    }
    this.t = until;
    this.timers = this.timers.filter((x) => !x.cancelled);
  }

  get pending(): number {
    return this.timers.filter((x) => !x.cancelled).length;
  }
}

/** One connection as the engine sees it: what it was sent and refused. */
interface Peer {
  readonly clientId: string;
  readonly inbox: ServerMessage[];
  readonly refused: { code: number; message: string }[];
  displaced: boolean;
}

/** Lets the engine's pending promises (store calls, the next round's start) run to completion. */
async function settle(): Promise<void> {
  for (let i = 0; i < 8; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

const outbox: Outbox<Peer> = {
  send: (to, message) => void to.inbox.push(message),
  refuse: (to, code, message) => void to.refused.push({ code, message }),
  displace: (to, message) => {
    to.displaced = true;
    to.refused.push({ code: -1, message });
  },
};

interface Harness {
  readonly engine: RoundEngine<Peer>;
  readonly store: MemoryFederationStore;
  readonly clock: FakeClock;
  readonly events: EventEmitter<ServerEvents>;
}

async function harness(config: FederationConfig, minClients?: number, store = new MemoryFederationStore()): Promise<Harness> {
  const clock = new FakeClock();
  const events = new EventEmitter<ServerEvents>();
  // The bounds on one upload's g and examples are off here: these properties are about the exact
  // arithmetic of what was uploaded (test/unit/federation-robust.test.ts holds the bounds).
  const robustness = {
    gClipMultiple: Infinity,
    normClipMultiple: Infinity,
    maxAbsG: Infinity,
    maxExamples: Infinity,
    examplesMedianMultiple: Infinity,
    repeatSlack: Infinity,
    seedMedianClients: Infinity,
  };
  const engine = await RoundEngine.open({
    config,
    store,
    clock,
    outbox,
    events,
    log: () => {},
    modelHash: MODEL_HASH,
    generatorVersion: GENERATOR_VERSION,
    paramCount: 1000,
    minClients,
    robustness,
  });
  return { engine, store, clock, events };
}

/** A client's side: an exact replica of C built only from the deltas the engine sent. */
class FakeClient {
  replica: Float64Array;
  synced = 0;
  peer: Peer;
  finished = false;
  readonly digestStatuses: string[] = [];

  constructor(
    readonly id: string,
    k: number,
    readonly examples: number,
  ) {
    this.replica = new Float64Array(k);
    this.peer = this.newPeer();
  }

  newPeer(): Peer {
    return { clientId: this.id, inbox: [], refused: [], displaced: false };
  }

  hello(): HelloMessage {
    return { type: 'hello', clientId: this.id, token: '', modelHash: MODEL_HASH, lastSyncedRound: this.synced, generatorVersion: GENERATOR_VERSION };
  }

  digest(): Uint8Array {
    return createHash('sha256').update(Buffer.from(this.replica.buffer)).digest();
  }

  /** Applies a ROUND or SYNC: the change from the replica's round to the one named. */
  apply(m: ServerMessage): void {
    if (m.type !== 'round' && m.type !== 'sync') return;
    assert.equal(m.baseRound, this.synced, `${this.id}: change from ${m.baseRound}, the replica holds ${this.synced}`);
    const change = expandDelta(m.delta);
    for (let j = 0; j < change.length; j++) this.replica[j] += change[j];
    this.synced = m.type === 'round' ? m.round - 1 : m.round;
    if (m.type === 'sync' && m.finished) this.finished = true;
  }

  upload(round: number, pairs: readonly SeedGradient[]): UploadMessage {
    return {
      type: 'upload',
      round,
      examples: this.examples,
      lossBeforeSum: 2,
      lossBeforeCount: 1,
      lossAfterSum: 1,
      lossAfterCount: 1,
      digestRound: round - 1,
      digest: this.digest(),
      pairs,
    };
  }
}

/** Dyadic g: multiples of 2^-8 up to ±16, so every sum the engine forms is exact. */
function gridPairs(rng: Rng, k: number, n: number): SeedGradient[] {
  return Array.from({ length: n }, () => ({ seed: rng.nextInt(k), g: (rng.nextInt(8192) - 4096) / 256 }));
}

/** Float32 g of any scale, as real clients send them, on seeds 1..K−1 (seed 0 is the weights' marker). */
function randomPairs(rng: Rng, k: number, n: number): SeedGradient[] {
  return Array.from({ length: n }, () => ({ seed: 1 + rng.nextInt(k - 1), g: Math.fround((rng.nextFloat() * 2 - 1) * 10 ** (rng.nextFloat() * 4 - 2)) }));
}

function randomConfig(rng: Rng, over: Partial<FederationConfig> = {}): FederationConfig {
  return {
    k: 4 + rng.nextInt(60),
    federationSeed: rng.nextU32(),
    epsilon: 1e-3,
    eta: 1e-3,
    tau: 1 + rng.nextInt(12),
    batchSize: 1,
    sampling: rng.nextInt(2) === 0 ? 'uniform' : 'pro',
    weighting: rng.nextInt(2) === 0 ? 'examples' : 'equal',
    rounds: 2 + rng.nextInt(7),
    clientsPerRound: 1,
    deadlineMs: 1000 + rng.nextInt(5000),
    ...over,
  };
}

interface Contribution {
  readonly round: number;
  readonly uploads: readonly { readonly clientId: string; readonly examples: number; readonly pairs: readonly SeedGradient[] }[];
}

/**
 * Runs a federation to its end: every assigned client uploads (with probability `uploadChance`) or stays
 * silent until the deadline; clients sometimes leave and come back, with their replica. Returns the
 * uploads the engine accepted before each commit.
 */
async function runFederation(
  h: Harness,
  clients: FakeClient[],
  rng: Rng,
  o: { uploadChance: number; pairs: (k: number, n: number) => SeedGradient[]; reconnectChance: number },
): Promise<Contribution[]> {
  const { engine, clock, events, store } = h;
  const config = engine.config;
  const accepted = new Map<number, Map<string, { clientId: string; examples: number; pairs: readonly SeedGradient[] }>>();
  const contributions: Contribution[] = [];
  events.on('upload', (e) => assert.notEqual(e.digest, 'mismatch', `round ${e.round}: ${e.clientId}'s replica differs`));
  events.on('roundCommitted', (e) => {
    const round = accepted.get(e.round);
    assert.ok(round, `round ${e.round} committed without uploads`);
    assert.deepEqual([...e.participants].sort(), [...round.keys()].sort(), `round ${e.round}: the participants are exactly the clients that uploaded in time`);
    contributions.push({ round: e.round, uploads: e.participants.map((id) => round.get(id) as Contribution['uploads'][number]) });
  });
  events.on('roundStarted', (e) => accepted.set(e.round, new Map()));
  for (const c of clients) {
    assert.equal(engine.admit(c.hello()), null);
    await engine.join(c.peer, c.hello());
    await settle();
  }
  for (let guard = 0; guard < 10_000 && !clients.every((c) => c.finished); guard++) {
    let acted = false;
    for (const c of clients) {
      while (c.peer.inbox.length > 0) {
        const m = c.peer.inbox.shift() as ServerMessage;
        c.apply(m);
        if (m.type === 'ack') c.digestStatuses.push(m.digest);
        if (m.type !== 'round') continue;
        // The replica a client trains from is the committed state before the round (a round that no longer
        // waits for this client may have committed since the message was sent).
        const before = new Float64Array(config.k);
        for (let r = 1; r < m.round; r++) store.rounds.get(r)?.change.forEach((x, j) => (before[j] += x));
        assert.deepEqual(Array.from(c.replica), Array.from(before), `${c.id}'s replica at round ${m.round - 1}`);
        if (rng.nextFloat() >= o.uploadChance) continue; // silent: misses the deadline
        const pairs = [{ seed: 0, g: 1 }, ...o.pairs(config.k, rng.nextInt(config.tau))];
        accepted.get(m.round)?.set(c.id, { clientId: c.id, examples: c.examples, pairs });
        await engine.upload(c.peer, c.id, c.upload(m.round, pairs));
        await settle();
        acted = true;
      }
      if (!c.finished && rng.nextFloat() < o.reconnectChance) {
        // The connection drops; the client comes back with its replica, through a new connection.
        engine.leave(c.peer, c.id);
        c.peer = c.newPeer();
        assert.equal(engine.admit(c.hello()), null);
        await engine.join(c.peer, c.hello());
        await settle();
        acted = true;
      }
    }
    if (!acted && clients.some((c) => !c.finished)) {
      clock.advance(config.deadlineMs);
      await settle();
    }
  }
  assert.ok(
    clients.every((c) => c.finished),
    'every client reached the final state',
  );
  return contributions;
}

test('aggregation weights sum to 1, by examples or equal, with any counts', () => {
  const rng = createRng(101);
  for (let trial = 0; trial < 2000; trial++) {
    const n = 1 + rng.nextInt(40);
    const zeros = rng.nextInt(4) === 0;
    const contributions: ClientContribution[] = Array.from({ length: n }, () => ({ examples: zeros ? 0 : rng.nextInt(100_000), pairs: [] }));
    for (const weighting of ['examples', 'equal'] as const) {
      const w = aggregationWeights(contributions, weighting);
      const sum = w.reduce((s, x) => s + x, 0);
      assert.ok(w.every((x) => x >= 0));
      assert.ok(Math.abs(sum - 1) <= n * 2 ** -52, `${weighting}, n = ${n}: Σw = ${sum}`);
      if (weighting === 'examples' && contributions.some((c) => c.examples > 0)) {
        contributions.forEach((c, i) => assert.equal(w[i] === 0, c.examples === 0));
      }
    }
  }
});

test('random federations: weights sum to 1 in every commit, the total is conserved, every replica equals the committed state', async () => {
  const rng = createRng(2024);
  for (let trial = 0; trial < 60; trial++) {
    const n = 1 + rng.nextInt(6);
    const config = randomConfig(rng, { clientsPerRound: 1 + rng.nextInt(n) });
    const h = await harness(config, n);
    const clients = Array.from({ length: n }, (_, i) => new FakeClient(`c${i}`, config.k, 1 + rng.nextInt(500)));
    const contributions = await runFederation(h, clients, rng, { uploadChance: 0.85, pairs: (k, m) => randomPairs(rng, k, m), reconnectChance: 0.05 });
    const state = h.store.state;
    assert.ok(state);
    assert.equal(state.round, config.rounds);
    assert.equal(contributions.length, config.rounds);

    // Replicas built from the engine's messages alone equal the committed coefficients, and each other.
    for (const c of clients) assert.deepEqual(Array.from(c.replica), Array.from(state.coefficients), `trial ${trial}: ${c.id}`);
    // The committed coefficients are the sum of the recorded changes.
    const sum = new Float64Array(config.k);
    for (let r = 1; r <= config.rounds; r++) (await h.store.loadRound(r))?.change.forEach((x, j) => (sum[j] += x));
    assert.deepEqual(Array.from(sum), Array.from(state.coefficients));

    // Seed 0 got exactly one g = 1 from each participant and nothing else: ΔA_0 = Σ w_i = 1 every round.
    // Error feedback: C + residual equals Σ ΔA·2^16 (up to the rounding of ΔA·2^16 + residual).
    const exact = new Float64Array(config.k);
    for (const { uploads } of contributions) {
      const w = aggregationWeights(uploads, config.weighting);
      assert.ok(Math.abs(w.reduce((s, x) => s + x, 0) - 1) <= uploads.length * 2 ** -52);
      uploads.forEach((u, i) => {
        for (const p of u.pairs) exact[p.seed] += w[i] * p.g * COEFFICIENT_SCALE;
      });
    }
    for (let j = 0; j < config.k; j++) {
      const held = state.coefficients[j] + state.residual[j];
      assert.ok(
        Math.abs(held - exact[j]) <= 1e-6 * Math.max(1, Math.abs(exact[j])),
        `trial ${trial}, seed ${j}: C + residual = ${held}, Σ contributions = ${exact[j]}`,
      );
      assert.ok(Number.isSafeInteger(state.coefficients[j]));
    }
    assert.ok(Math.abs(state.coefficients[0] + state.residual[0] - config.rounds * COEFFICIENT_SCALE) <= 1e-6 * config.rounds * COEFFICIENT_SCALE);
    h.engine.close();
  }
});

test('on a dyadic grid, committed + residual = Σ contributions exactly, round after round', async () => {
  const rng = createRng(77);
  for (let trial = 0; trial < 40; trial++) {
    // 1, 2 or 4 clients per round, all uploading, equal weights: every w_i is a power of two.
    const perRound = [1, 2, 4][rng.nextInt(3)];
    const config = randomConfig(rng, { clientsPerRound: perRound, weighting: 'equal', rounds: 3 + rng.nextInt(10) });
    const h = await harness(config, perRound);
    const clients = Array.from({ length: perRound }, (_, i) => new FakeClient(`g${i}`, config.k, 1 + rng.nextInt(50)));
    const exact = new Float64Array(config.k);
    const contributions = await runFederation(h, clients, rng, { uploadChance: 1, pairs: (k, m) => gridPairs(rng, k, m), reconnectChance: 0 });
    for (const { uploads } of contributions) {
      const w = aggregationWeights(uploads, config.weighting);
      assert.equal(
        w.reduce((s, x) => s + x, 0),
        1,
        'powers of two sum to 1 exactly',
      );
      uploads.forEach((u, i) => {
        for (const p of u.pairs) exact[p.seed] += w[i] * p.g * COEFFICIENT_SCALE;
      });
    }
    const state = h.store.state;
    assert.ok(state);
    for (let j = 0; j < config.k; j++) assert.equal(state.coefficients[j] + state.residual[j], exact[j], `trial ${trial}, seed ${j}`);
    for (const c of clients) assert.deepEqual(Array.from(c.replica), Array.from(state.coefficients));
    h.engine.close();
  }
});

test('a client that misses the deadline is dropped; the round commits with the others and its late upload is acknowledged late', async () => {
  const rng = createRng(9);
  for (let trial = 0; trial < 40; trial++) {
    const n = 2 + rng.nextInt(5);
    const config = randomConfig(rng, { clientsPerRound: n, rounds: 3 });
    const h = await harness(config, n);
    const clients = Array.from({ length: n }, (_, i) => new FakeClient(`d${i}`, config.k, 10));
    for (const c of clients) await h.engine.join(c.peer, c.hello());
    await settle();
    const committed: { round: number; participants: readonly string[] }[] = [];
    h.events.on('roundCommitted', (e) => committed.push(e));
    const open = h.engine.openRound;
    assert.ok(open);
    assert.equal(open.assigned.length, n);
    const late = clients[rng.nextInt(n)];
    const assignments = new Map<string, number>();
    for (const c of clients) {
      const m = c.peer.inbox.find((x) => x.type === 'round');
      assert.ok(m && m.type === 'round');
      c.apply(m);
      assignments.set(c.id, m.round);
      if (c !== late) await h.engine.upload(c.peer, c.id, c.upload(m.round, gridPairs(rng, config.k, 1 + rng.nextInt(config.tau))));
    }
    await settle();
    assert.equal(committed.length, 0, 'the round waits for its last client');
    h.clock.advance(config.deadlineMs - 1);
    await settle();
    assert.equal(committed.length, 0, 'not before the deadline');
    h.clock.advance(1);
    await settle();
    assert.equal(committed.length, 1);
    assert.deepEqual(
      [...committed[0].participants].sort(),
      clients
        .filter((c) => c !== late)
        .map((c) => c.id)
        .sort(),
    );
    assert.equal(h.store.state?.round, 1);
    // The straggler's upload arrives after the commit: acknowledged as late, not aggregated.
    const before = h.store.state;
    late.peer.inbox.length = 0;
    await h.engine.upload(late.peer, late.id, late.upload(assignments.get(late.id) as number, [{ seed: 0, g: 5 }]));
    const ack = late.peer.inbox.find((x) => x.type === 'ack');
    assert.ok(ack && ack.type === 'ack' && ack.status === 'late');
    assert.deepEqual(h.store.state, before);
    h.engine.close();
  }
});

test('a round with no upload before its deadline is rerun with a new attempt', async () => {
  const config = randomConfig(createRng(5), { clientsPerRound: 1, rounds: 2 });
  const h = await harness(config, 1);
  const c = new FakeClient('only', config.k, 1);
  const restarts: string[] = [];
  const attempts: number[] = [];
  h.events.on('roundRestarted', (e) => restarts.push(e.reason));
  h.events.on('roundStarted', (e) => attempts.push(e.attempt));
  await h.engine.join(c.peer, c.hello());
  await settle();
  h.clock.advance(config.deadlineMs);
  await settle();
  assert.deepEqual(restarts, ['no upload before the deadline']);
  assert.deepEqual(attempts, [0, 1]);
  assert.equal(h.store.state, null, 'nothing committed');
  h.engine.close();
  assert.equal(h.clock.pending, 0, 'closing cancels the deadline');
});

test('uploads that complete a round while their digests are being checked close that round only, never the next', async () => {
  const config = randomConfig(createRng(17), { clientsPerRound: 3, rounds: 3 });
  const h = await harness(config, 3);
  const clients = ['a', 'b', 'c'].map((id) => new FakeClient(id, config.k, 5));
  const started: { round: number; attempt: number }[] = [];
  const committed: { round: number; participants: readonly string[] }[] = [];
  h.events.on('roundStarted', (e) => started.push({ round: e.round, attempt: e.attempt }));
  h.events.on('roundCommitted', (e) => committed.push(e));
  for (const c of clients) await h.engine.join(c.peer, c.hello());
  await settle();
  // All three arrive at once, as from three connections: each is still in its digest check when the
  // last one completes round 1 and round 2 opens.
  const rng = createRng(3);
  await Promise.all(
    clients.map((c) => {
      const m = c.peer.inbox.find((x) => x.type === 'round');
      assert.ok(m && m.type === 'round');
      c.apply(m);
      return h.engine.upload(c.peer, c.id, c.upload(m.round, gridPairs(rng, config.k, 2)));
    }),
  );
  await settle();
  assert.deepEqual(
    committed.map((e) => [e.round, [...e.participants].sort()]),
    [[1, ['a', 'b', 'c']]],
  );
  assert.deepEqual(
    started,
    [
      { round: 1, attempt: 0 },
      { round: 2, attempt: 0 },
    ],
    'round 2 opened once and is still open',
  );
  assert.deepEqual(h.engine.openRound?.assigned.length, 3);
  h.engine.close();
});

test('a diverging round is refused without touching the committed state; three refusals in a row halt, a commit in between resets the count', async () => {
  const rng = createRng(31);
  for (let trial = 0; trial < 30; trial++) {
    const config = randomConfig(rng, { clientsPerRound: 1, rounds: 50, weighting: 'equal' });
    const h = await harness(config, 1);
    const c = new FakeClient('x', config.k, 1);
    const halted: string[] = [];
    const refused: string[] = [];
    h.events.on('halted', (e) => halted.push(e.reason));
    h.events.on('roundRestarted', (e) => e.reason.startsWith('refused') && refused.push(e.reason));
    await h.engine.join(c.peer, c.hello());
    await settle();
    // Σ|A| ≈ 10^7 · n is far beyond what max|Zq| · Σ|C| < 2^53 allows.
    const diverging = (round: number) => c.upload(round, [{ seed: rng.nextInt(config.k), g: 1e7 }]);
    const step = async (diverge: boolean): Promise<void> => {
      const m = c.peer.inbox.filter((x) => x.type === 'round').at(-1);
      assert.ok(m && m.type === 'round', 'the client holds an assignment');
      c.peer.inbox.length = 0;
      c.apply(m);
      await h.engine.upload(c.peer, c.id, diverge ? diverging(m.round) : c.upload(m.round, gridPairs(rng, config.k, 1 + rng.nextInt(config.tau))));
      await settle();
    };
    // A few honest rounds, then a pattern of refusals where a commit interrupts the first run of two.
    const honest = rng.nextInt(4);
    for (let i = 0; i < honest; i++) await step(false);
    const snapshot = () => structuredClone({ state: h.store.state, rounds: [...h.store.rounds.keys()] });
    let committed = snapshot();
    await step(true);
    await step(true);
    assert.deepEqual(snapshot(), committed, 'refused rounds leave the store as it was');
    assert.equal(halted.length, 0);
    await step(false);
    assert.equal(h.store.state?.round, honest + 1, 'an honest round after two refusals commits');
    committed = snapshot();
    await step(true);
    await step(true);
    assert.equal(halted.length, 0);
    await step(true);
    assert.equal(refused.length, 5);
    assert.equal(halted.length, 1, 'three refusals in a row halt the federation');
    assert.deepEqual(snapshot(), committed);
    assert.equal(h.engine.halted, halted[0]);
    assert.equal(h.engine.openRound, null);
    // Halted: no round starts again, whoever joins.
    const other = new FakeClient('y', config.k, 1);
    await h.engine.join(other.peer, other.hello());
    await settle();
    assert.equal(h.engine.openRound, null);
    assert.ok(!other.peer.inbox.some((m) => m.type === 'round'));
    assert.equal(h.clock.pending, 0);
    h.engine.close();
  }
});

test('a failed commit leaves the state as it was and the round is run again', async () => {
  const config = randomConfig(createRng(3), { clientsPerRound: 1, rounds: 2 });
  const store = new MemoryFederationStore();
  const h = await harness(config, 1, store);
  const c = new FakeClient('f', config.k, 1);
  await h.engine.join(c.peer, c.hello());
  await settle();
  store.failCommits = 1;
  const first = c.peer.inbox.find((m) => m.type === 'round');
  assert.ok(first && first.type === 'round');
  c.apply(first);
  c.peer.inbox.length = 0;
  await h.engine.upload(c.peer, c.id, c.upload(first.round, [{ seed: 1, g: 2 }]));
  await settle();
  assert.equal(store.state, null);
  assert.equal(h.engine.openRound?.round, 1, 'round 1 is open again');
  h.engine.close();
});

test('a restart on the same store resumes: a client that was away catches up to the committed coefficients', async () => {
  const rng = createRng(12);
  for (let trial = 0; trial < 10; trial++) {
    const config = randomConfig(rng, { clientsPerRound: 2, rounds: 6 });
    const store = new MemoryFederationStore();
    const first = await harness(config, 2, store);
    const a = new FakeClient('a', config.k, 3);
    const b = new FakeClient('b', config.k, 5);
    // Two rounds, then the engine goes away.
    for (const c of [a, b]) await first.engine.join(c.peer, c.hello());
    await settle();
    for (let r = 0; r < 2; r++) {
      for (const c of [a, b]) {
        const m = c.peer.inbox.filter((x) => x.type === 'round').at(-1);
        assert.ok(m && m.type === 'round');
        c.peer.inbox.length = 0;
        c.apply(m);
        await first.engine.upload(c.peer, c.id, c.upload(m.round, gridPairs(rng, config.k, Math.min(3, config.tau))));
      }
      await settle();
    }
    first.engine.close();
    assert.equal(store.state?.round, 2);
    assert.deepEqual([a.synced, b.synced], [1, 1], 'the clients hold round 1: round 2 reached them in no assignment');
    // A new engine on the same store; a third client starts from the base model and catches up.
    const second = await harness(config, 3, store);
    const late = new FakeClient('late', config.k, 1);
    for (const c of [a, b, late]) {
      c.peer = c.newPeer();
      await second.engine.join(c.peer, c.hello());
    }
    await settle();
    for (const c of [a, b, late]) c.peer.inbox.forEach((m) => c.apply(m));
    assert.equal(second.engine.openRound?.round, 3);
    const assigned = second.engine.openRound?.assigned ?? [];
    assert.equal(assigned.length, 2);
    for (const c of [a, b, late].filter((x) => assigned.includes(x.id))) {
      assert.equal(c.synced, 2);
      assert.deepEqual(Array.from(c.replica), Array.from(store.state?.coefficients ?? []));
    }
    second.engine.close();
  }
});

test('a store of another federation is refused; a hello for another model, generator or a future round is not admitted', async () => {
  const config = randomConfig(createRng(1), { clientsPerRound: 1 });
  const store = new MemoryFederationStore();
  await harness(config, 1, store);
  await assert.rejects(harness({ ...config, k: config.k + 1 }, 1, store), /another|belongs to a federation with K/);
  const h = await harness(config, 1, store);
  const c = new FakeClient('z', config.k, 1);
  assert.equal(h.engine.admit({ ...c.hello(), modelHash: new Uint8Array(32) })?.code, 9);
  assert.equal(h.engine.admit({ ...c.hello(), generatorVersion: 2 })?.code, 10);
  assert.equal(h.engine.admit({ ...c.hello(), lastSyncedRound: 1 })?.code, 17);
  h.engine.close();
});

test('a client that rejoins from an earlier round withdraws its pending digest reports: the quorum does not flag a replica it no longer holds', async () => {
  const config = randomConfig(createRng(23), { clientsPerRound: 3, rounds: 3 });
  const h = await harness(config, 3);
  const clients = ['a', 'b', 'c'].map((id) => new FakeClient(id, config.k, 5));
  const mismatches: { round: number; clientId: string }[] = [];
  h.events.on('digestMismatch', (e) => mismatches.push({ round: e.round, clientId: e.clientId }));
  for (const c of clients) await h.engine.join(c.peer, c.hello());
  await settle();
  const rng = createRng(5);
  const uploadRound = async (c: FakeClient): Promise<void> => {
    const m = c.peer.inbox.filter((x) => x.type === 'round').at(-1);
    assert.ok(m && m.type === 'round', `${c.id} holds an assignment`);
    c.peer.inbox.length = 0;
    c.apply(m);
    await h.engine.upload(c.peer, c.id, c.upload(m.round, gridPairs(rng, config.k, 1)));
    await settle();
  };
  for (const c of clients) await uploadRound(c);
  assert.equal(h.store.state?.round, 1);
  // c's replica drifts and it reports round 1's digest first: pending, no quorum yet.
  const [a, b, c] = clients;
  const m = c.peer.inbox.filter((x) => x.type === 'round').at(-1);
  assert.ok(m && m.type === 'round');
  c.peer.inbox.length = 0;
  c.apply(m);
  c.replica[0] += 1;
  await h.engine.upload(c.peer, c.id, c.upload(m.round, gridPairs(rng, config.k, 1)));
  await settle();
  // c rebuilds its replica (as after a mismatch of another round) and rejoins from round 0.
  c.replica.fill(0);
  c.synced = 0;
  c.peer = c.newPeer();
  await h.engine.join(c.peer, c.hello());
  await settle();
  // a and b agree on round 1: the quorum is decided with c's old report withdrawn.
  await uploadRound(a);
  await uploadRound(b);
  assert.deepEqual(mismatches, [], 'no mismatch for a replica c no longer holds');
  h.engine.close();
});

test('a client that missed two deadlines in a row is not waited for until it uploads again', async () => {
  const config = randomConfig(createRng(31), { clientsPerRound: 3, rounds: 6 });
  const h = await harness(config, 3);
  const [a, b, c] = ['a', 'b', 'c'].map((id) => new FakeClient(id, config.k, 5));
  const notAwaited: string[] = [];
  h.events.on('notAwaited', (e) => notAwaited.push(e.clientId));
  for (const x of [a, b, c]) await h.engine.join(x.peer, x.hello());
  await settle();
  const rng = createRng(6);
  /** The client applies what it was sent; it uploads for its latest assignment when told to. */
  const sync = (x: FakeClient): number => {
    let round = 0;
    for (const m of x.peer.inbox.splice(0)) {
      x.apply(m);
      if (m.type === 'round') round = m.round;
    }
    return round;
  };
  const upload = async (x: FakeClient): Promise<void> => {
    const round = sync(x);
    assert.ok(round > 0, `${x.id} holds an assignment`);
    await h.engine.upload(x.peer, x.id, x.upload(round, gridPairs(rng, config.k, 1)));
    await settle();
  };
  const committed = (): number => h.store.state?.round ?? 0;
  // Rounds 1 and 2: c is silent and both wait out their deadline.
  for (const round of [1, 2]) {
    await upload(a);
    await upload(b);
    assert.equal(committed(), round - 1, `round ${round} waits for c`);
    sync(c);
    h.clock.advance(config.deadlineMs);
    await settle();
    assert.equal(committed(), round);
  }
  assert.deepEqual(notAwaited, ['c']);
  // Round 3: a and b are enough.
  await upload(a);
  await upload(b);
  assert.equal(committed(), 3, 'round 3 closes without waiting for c');
  // Round 4: c uploads again, and so is waited for from then on.
  await upload(c);
  await upload(a);
  await upload(b);
  assert.equal(committed(), 4);
  await upload(a);
  await upload(b);
  assert.equal(committed(), 4, 'round 5 waits for c again');
  sync(c);
  h.clock.advance(config.deadlineMs);
  await settle();
  assert.equal(committed(), 5);
  h.engine.close();
});

test('a client not waited for whose upload comes late but within its round deadline is waited for again', async () => {
  const config = randomConfig(createRng(32), { clientsPerRound: 3, rounds: 5 });
  const h = await harness(config, 3);
  const [a, b, c] = ['a', 'b', 'c'].map((id) => new FakeClient(id, config.k, 5));
  for (const x of [a, b, c]) await h.engine.join(x.peer, x.hello());
  await settle();
  const rng = createRng(7);
  const sync = (x: FakeClient): number => {
    let round = 0;
    for (const m of x.peer.inbox.splice(0)) {
      x.apply(m);
      if (m.type === 'round') round = m.round;
      if (m.type === 'ack') x.digestStatuses.push(`${m.round}:${m.status}`);
    }
    return round;
  };
  const upload = async (x: FakeClient, round = sync(x)): Promise<void> => {
    await h.engine.upload(x.peer, x.id, x.upload(round, gridPairs(rng, config.k, 1)));
    await settle();
  };
  const committed = (): number => h.store.state?.round ?? 0;
  for (const round of [1, 2]) {
    await upload(a);
    await upload(b);
    sync(c);
    h.clock.advance(config.deadlineMs);
    await settle();
    assert.equal(committed(), round);
  }
  await upload(a);
  await upload(b);
  assert.equal(committed(), 3, 'round 3 closes without waiting for c');
  // c's round-3 upload arrives after the close but before round 3's deadline: late, and awaited again.
  const next = sync(c);
  assert.equal(next, 4);
  await upload(c, 3);
  sync(c);
  assert.ok(c.digestStatuses.includes('3:late'));
  await upload(a);
  await upload(b);
  assert.equal(committed(), 3, 'round 4 waits for c again');
  await upload(c, next);
  assert.equal(committed(), 4);
  h.engine.close();
});
