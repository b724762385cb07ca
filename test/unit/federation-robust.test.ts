// One client cannot halt or steer the federation: its |g| is bounded by a multiple of the round's
// median, its example count by a multiple of the round's (lower) median and an absolute cap, and a round
// that would still leave the replicas' exact range drops the upload responsible, names its client, and
// commits with the others instead of halting.
import { strict as assert } from 'node:assert';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { Clock, Timer } from '../../federation/clock';
import type { ServerEvents } from '../../federation/events';
import { boundContributions, DEFAULT_ROBUSTNESS, lowerMedian } from '../../federation/robust';
import { RoundEngine, type Outbox, type RoundEngineOptions } from '../../federation/round-engine';
import { ErrorCode, type FederationConfig, type HelloMessage, type SeedGradient, type ServerMessage, type UploadMessage } from '../../protocol';
import { MemoryFederationStore } from '../helpers/memory-store';

const MODEL_HASH = new Uint8Array(32).fill(7);
const config: FederationConfig = {
  k: 32, federationSeed: 9, epsilon: 1e-3, eta: 1e-3, tau: 4, batchSize: 1, sampling: 'pro', weighting: 'examples', rounds: 3, clientsPerRound: 3, deadlineMs: 1000,
};

const noClock: Clock = { now: () => 0, setTimer: (): Timer => ({ cancel: () => {} }) };
interface Peer { readonly id: string; readonly inbox: ServerMessage[] }
const outbox: Outbox<Peer> = { send: (to, m) => void to.inbox.push(m), refuse: (to, code, message) => void to.inbox.push({ type: 'error', code, message }), displace: () => {} };
const settle = async (): Promise<void> => {
  for (let i = 0; i < 8; i++) await new Promise<void>((r) => setImmediate(r));
};

async function engineWith(over: Partial<RoundEngineOptions<Peer>> = {}) {
  const events = new EventEmitter<ServerEvents>();
  const store = new MemoryFederationStore();
  const engine = await RoundEngine.open<Peer>({ config, store, clock: noClock, outbox, events, log: () => {}, modelHash: MODEL_HASH, generatorVersion: 1, paramCount: 100, ...over });
  const peers = ['a', 'b', 'c'].map((id) => ({ id, inbox: [] as ServerMessage[] }));
  for (const p of peers) {
    const hello: HelloMessage = { type: 'hello', clientId: p.id, token: '', modelHash: MODEL_HASH, lastSyncedRound: 0, generatorVersion: 1 };
    await engine.join(p, hello);
  }
  await settle();
  return { engine, store, events, peers };
}

const upload = (round: number, examples: number, pairs: SeedGradient[]): UploadMessage => ({
  type: 'upload', round, examples, lossBeforeSum: 1, lossBeforeCount: 1, lossAfterSum: 1, lossAfterCount: 1, digestRound: round - 1, digest: new Uint8Array(32), pairs,
});
const honest = (s: number): SeedGradient[] => [1, 2, 3, 4].map((seed) => ({ seed: seed + s, g: 0.5 + seed / 10 }));

test('lower median and bounds: |g| clipped at a multiple of the median, examples at a multiple of the lower median', () => {
  assert.equal(lowerMedian([4, 2 ** 32 - 1]), 4);
  assert.equal(lowerMedian([3, 1, 2]), 2);
  const bounded = boundContributions(
    [
      { examples: 4, pairs: honest(0) },
      { examples: 4, pairs: honest(4) },
      { examples: 2 ** 32 - 1, pairs: [{ seed: 20, g: 3e38 }, { seed: 21, g: -3e38 }] },
    ],
    DEFAULT_ROBUSTNESS,
  );
  assert.ok(bounded.gBound < 100, `g bound ${bounded.gBound}`);
  for (const c of bounded.contributions) for (const p of c.pairs) assert.ok(Math.abs(p.g) <= bounded.gBound);
  assert.equal(bounded.contributions[2].examples, 16);
  assert.equal(bounded.contributions[0].examples, 4);
});

test('g = 3e38 and 2^32 − 1 examples from one client: the round commits with a bounded change and the federation runs on', async () => {
  const { engine, store, events, peers } = await engineWith();
  let halted = false;
  events.on('halted', () => (halted = true));
  for (let round = 1; round <= 3; round++) {
    await engine.upload(peers[0], 'a', upload(round, 4, honest(0)));
    await engine.upload(peers[1], 'b', upload(round, 4, honest(4)));
    await engine.upload(peers[2], 'c', upload(round, 2 ** 32 - 1, [{ seed: 1, g: 3e38 }, { seed: 20, g: 3e38 }]));
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
  const { engine, store, events, peers } = await engineWith({ robustness: { gClipMultiple: Infinity, maxAbsG: Infinity, maxExamples: Infinity, examplesMedianMultiple: Infinity } });
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
  assert.deepEqual(excluded.map((e) => [e.round, e.clientId]), [[1, 'c'], [2, 'c'], [3, 'c']]);
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
  const engine = await RoundEngine.open<Peer>({ config: one, store, clock: noClock, outbox, events, log: () => {}, modelHash: MODEL_HASH, generatorVersion: 1, paramCount: 100, minClients: 1 });
  const peers = new Map(['a', 'b'].map((id) => [id, { id, inbox: [] as ServerMessage[] }]));
  const started: { round: number; attempt: number; clients: readonly string[] }[] = [];
  const restarted: string[] = [];
  events.on('roundStarted', (e) => started.push(e));
  events.on('roundRestarted', (e) => restarted.push(e.reason));
  let halted = false;
  events.on('halted', () => (halted = true));
  for (const p of peers.values()) await engine.join(p, { type: 'hello', clientId: p.id, token: '', modelHash: MODEL_HASH, lastSyncedRound: 0, generatorVersion: 1 });
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
  const off = { gClipMultiple: Infinity, maxAbsG: Infinity, maxExamples: Infinity, examplesMedianMultiple: Infinity };
  const engine = await RoundEngine.open<Peer>({ config, store, clock: noClock, outbox, events, log: () => {}, modelHash: MODEL_HASH, generatorVersion: 1, paramCount: 100, robustness: off });
  const peers = ['a', 'b', 'c'].map((id) => ({ id, inbox: [] as ServerMessage[] }));
  for (const p of peers) {
    await engine.join(p, { type: 'hello', clientId: p.id, token: '', modelHash: MODEL_HASH, lastSyncedRound: 0, generatorVersion: 1 }, p.id === 'c' ? { maxExamples: 4 } : {});
  }
  await settle();
  await engine.upload(peers[0], 'a', upload(1, 4, honest(0)));
  await engine.upload(peers[1], 'b', upload(1, 4, honest(4)));
  await engine.upload(peers[2], 'c', upload(1, 1e9, honest(8)));
  await settle();
  assert.equal(store.rounds.get(1)?.examples, 12);
});
