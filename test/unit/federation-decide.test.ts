// Properties of the round lifecycle's pure decide(state, event) (federation/engine/decide.ts), over
// seeded random event sequences: a simulated store answers its effects (sometimes failing, in random
// order, sometimes twice), clients upload or stay silent, timers fire late or for an earlier attempt.
// In every run: no round is committed twice, a round opens only with the clients the rules require and
// commits only uploads its sampled clients made, the committed change is the aggregate of those uploads
// with error feedback, each upload's influence stays within the bounds, and a completion delivered twice
// changes nothing the second time. The modules of the decision hold no await and read no clock.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { aggregateContributions } from '../../federation/aggregate';
import { decide } from '../../federation/engine/decide';
import type { Effect } from '../../federation/engine/effects';
import type { EngineEvent } from '../../federation/engine/inputs';
import { MISSES_BEFORE_NOT_AWAITED, initialState, type EngineState, type Rules } from '../../federation/engine/state';
import { DEFAULT_PACING } from '../../federation/pacing';
import { DEFAULT_ROBUSTNESS, boundRound, repeatCap, type Robustness } from '../../federation/robust';
import { COEFFICIENT_SCALE, type FederationConfig, type SeedGradient, type UploadMessage } from '../../protocol';
import { createRng, type Rng } from '../../trainer/data/rng';

const OFF: Robustness = {
  gClipMultiple: Infinity,
  normClipMultiple: Infinity,
  maxAbsG: Infinity,
  maxExamples: Infinity,
  examplesMedianMultiple: Infinity,
  repeatSlack: Infinity,
  seedMedianClients: Infinity,
};

function rulesFor(rng: Rng, robustness: Robustness): Rules {
  const clientsPerRound = 1 + rng.nextInt(5);
  const config: FederationConfig = {
    k: 8 + rng.nextInt(40),
    federationSeed: rng.nextU32(),
    epsilon: 1e-3,
    eta: 1e-3,
    tau: 1 + rng.nextInt(10),
    batchSize: 1,
    sampling: 'uniform',
    weighting: rng.nextInt(2) === 0 ? 'examples' : 'equal',
    rounds: 3 + rng.nextInt(6),
    clientsPerRound,
    deadlineMs: 20_000 + rng.nextInt(40_000),
  };
  const secret = Uint8Array.from({ length: 32 }, () => rng.nextInt(256));
  return {
    config,
    minClients: 1 + rng.nextInt(clientsPerRound),
    probabilityBits: 6,
    mantissaBits: 12,
    robustness,
    pacing: { ...DEFAULT_PACING, minDeadlineMs: 1000 },
    paramCount: 1000,
    secret,
  };
}

function emptyCommitted(k: number): EngineState['committed'] {
  return {
    round: 0,
    coefficients: new Float64Array(k),
    residual: new Float64Array(k),
    importanceSum: new Float64Array(k),
    importanceCount: new Float64Array(k),
  };
}

/** Completions whose second delivery must change nothing. */
const IDEMPOTENT = new Set<EngineEvent['type']>([
  'openRoundSaved',
  'openRoundSaveFailed',
  'allInChecked',
  'timerFired',
  'uploadsCollected',
  'collectFailed',
  'commitDone',
  'commitFailed',
  'commitsRead',
  'lateUpload',
  'presenceRead',
]);

interface Commit {
  readonly round: number;
  readonly before: EngineState;
  readonly effect: Extract<Effect, { kind: 'commit' }>;
  readonly uploads: ReadonlyMap<string, UploadMessage>;
}

/** A store, a clock and clients around decide(): what a driver would do, with the store's answers late, failing or repeated. */
class World {
  state: EngineState;
  now = 1_700_000_000_000;
  connected: string[];
  timer: { round: number; attempt: number; reason: 'deadline' | 'paced'; at: number } | null = null;
  /** The store's uploads, once per client and round, for the round its open record names. */
  readonly stored = new Map<number, Map<string, UploadMessage>>();
  storedOpen: { round: number; attempt: number } | null = null;
  readonly pending: (() => EngineEvent)[] = [];
  readonly commits: Commit[] = [];
  readonly committedEmits = new Map<number, number>();
  writes = 0;

  constructor(
    readonly rng: Rng,
    rules: Rules,
    readonly clients: readonly string[],
    readonly g: (rng: Rng, k: number, n: number) => SeedGradient[],
  ) {
    this.state = initialState(rules, emptyCommitted(rules.config.k), [], 0);
    this.connected = clients.filter(() => rng.nextFloat() < 0.8);
  }

  step(event: EngineEvent): readonly Effect[] {
    const before = this.state;
    const { state, effects } = decide(before, event);
    this.check(before, event, state, effects);
    this.state = state;
    for (const effect of effects) this.perform(before, effect);
    return effects;
  }

  private check(before: EngineState, event: EngineEvent, after: EngineState, effects: readonly Effect[]): void {
    // Committed rounds only ever advance one at a time, and only on the store's confirmation.
    if (after.committed.round !== before.committed.round) {
      assert.equal(event.type, 'commitDone');
      assert.equal(after.committed.round, before.committed.round + 1);
    }
    for (const effect of effects) {
      if (effect.kind === 'emit' && effect.name === 'roundCommitted') {
        const n = (this.committedEmits.get(effect.payload.round) ?? 0) + 1;
        assert.equal(n, 1, `round ${effect.payload.round} committed twice`);
        this.committedEmits.set(effect.payload.round, n);
      }
      if (effect.kind === 'saveOpenRound') {
        // A round opens with min(clientsPerRound, ready) distinct connected clients, and only with minClients ready.
        assert.equal(event.type, 'presenceRead');
        const connected = event.type === 'presenceRead' ? event.connected : [];
        const { assigned } = effect.record;
        assert.ok(connected.length >= before.rules.minClients, 'a round opened with fewer connected clients than minClients');
        assert.equal(new Set(assigned).size, assigned.length);
        assert.ok(assigned.every((id) => connected.includes(id)));
        const ready = connected.filter((id) => !before.refusedClients.has(id));
        const pool = ready.length >= before.rules.minClients ? ready.length : connected.length;
        assert.equal(assigned.length, Math.min(before.rules.config.clientsPerRound, pool));
        assert.equal(effect.record.round, before.committed.round + 1);
      }
      if (effect.kind === 'commit') this.checkCommit(before, after, effect);
    }
    if (IDEMPOTENT.has(event.type)) {
      // The same completion delivered again at once (a retried store answer): nothing changes, nothing is done.
      const again = decide(after, event);
      assert.deepEqual(again.effects, [], `${event.type} delivered twice acted twice`);
      assert.deepEqual(again.state, after, `${event.type} delivered twice changed the state`);
    }
  }

  /** What a commit writes: its round next, uploads its sampled clients made, and exactly their aggregate. */
  private checkCommit(before: EngineState, after: EngineState, effect: Extract<Effect, { kind: 'commit' }>): void {
    const r = after.open;
    assert.ok(r && r.commit, 'a commit is written only for the round closing');
    const { record, state: next } = effect;
    assert.equal(record.round, before.committed.round + 1);
    assert.ok(
      !this.commits.some((c) => c.effect.record.round === record.round && this.committedEmits.has(record.round)),
      `round ${record.round} is written again after its commit`,
    );
    assert.ok(record.participants.length >= 1, 'a round commits at least one upload');
    assert.equal(new Set(record.participants).size, record.participants.length);
    const uploads = this.stored.get(record.round) ?? new Map<string, UploadMessage>();
    for (const id of record.participants) {
      assert.ok(r.assigned.has(id), `${id} is not sampled in round ${record.round}`);
      assert.ok(uploads.has(id), `${id} made no upload the store kept for round ${record.round}`);
    }
    if (r.closing === 'complete') {
      // Closed early only once every awaited client uploaded.
      for (const id of r.assigned) {
        if ((before.missedInARow.get(id) ?? 0) < MISSES_BEFORE_NOT_AWAITED) assert.ok(uploads.has(id), `round ${record.round} closed complete without ${id}`);
      }
    }
    const prev = before.committed;
    for (let j = 0; j < prev.coefficients.length; j++) assert.equal(next.coefficients[j], prev.coefficients[j] + record.change[j]);
    this.commits.push({ round: record.round, before, effect, uploads: new Map(record.participants.map((id) => [id, uploads.get(id) as UploadMessage])) });
  }

  private perform(before: EngineState, effect: Effect): void {
    const rng = this.rng;
    switch (effect.kind) {
      case 'armTimer':
        this.timer = { round: effect.round, attempt: effect.attempt, reason: effect.reason, at: effect.at };
        return;
      case 'cancelTimer':
        this.timer = null;
        return;
      case 'saveOpenRound': {
        const { round, attempt } = effect.record;
        // The record is being replaced: no upload is kept for the round until it is written; writes
        // are applied in the order they were asked for, so an earlier one answered late is already gone.
        this.storedOpen = null;
        const write = ++this.writes;
        this.pending.push(() => {
          if (rng.nextFloat() < 0.05) return { type: 'openRoundSaveFailed', round, attempt, error: 'store down' };
          if (write === this.writes) {
            this.storedOpen = { round, attempt };
            this.stored.set(round, new Map());
          }
          return { type: 'openRoundSaved', round, attempt };
        });
        return;
      }
      case 'checkAllIn': {
        const { round, attempt, then, awaited, sampled } = effect;
        this.pending.push(() => {
          const held = this.stored.get(round) ?? new Map();
          const allIn = awaited === null ? held.size >= sampled : awaited.every((id) => held.has(id));
          return { type: 'allInChecked', round, attempt, then, allIn, coordinator: true };
        });
        return;
      }
      case 'collectUploads': {
        const { round, attempt } = effect;
        this.pending.push(() =>
          rng.nextFloat() < 0.05
            ? { type: 'collectFailed', round, attempt, error: 'store down' }
            : { type: 'uploadsCollected', round, attempt, stored: new Map(this.stored.get(round) ?? []), now: this.now },
        );
        return;
      }
      case 'commit': {
        const round = effect.record.round;
        this.pending.push(() => {
          if (rng.nextFloat() < 0.05) return { type: 'commitFailed', round, stale: false, error: 'disk full' };
          this.storedOpen = null;
          return { type: 'commitDone', round };
        });
        return;
      }
      case 'startRound':
        this.pending.push(() => ({ type: 'presenceRead', connected: [...this.connected], now: this.now }));
        return;
      default:
        void before;
    }
  }

  /** One random thing happens. */
  act(): void {
    const rng = this.rng;
    const { k, tau } = this.state.rules.config;
    const choice = rng.nextInt(10);
    const open = this.state.open;
    if (choice <= 2 && this.pending.length > 0) {
      // The store answers, in any order.
      const [answer] = this.pending.splice(rng.nextInt(this.pending.length), 1);
      this.step(answer());
    } else if (choice <= 5 && open && this.storedOpen?.round === open.round && this.storedOpen.attempt === open.attempt) {
      const silent = [...open.assigned].filter((id) => !(this.stored.get(open.round)?.has(id) ?? false));
      if (silent.length === 0) return;
      const id = silent[rng.nextInt(silent.length)];
      // Some clients never upload: they miss deadlines.
      if (id.endsWith('9')) return;
      this.now += rng.nextInt(3000);
      const upload: UploadMessage = {
        type: 'upload',
        round: open.round,
        examples: 1 + rng.nextInt(100),
        lossBeforeSum: 2,
        lossBeforeCount: 1,
        lossAfterSum: 1,
        lossAfterCount: 1,
        digestRound: open.round - 1,
        digest: new Uint8Array(32),
        pairs: this.g(rng, k, tau),
      };
      (this.stored.get(open.round) as Map<string, UploadMessage>).set(id, upload);
      this.step({ type: 'uploadAccepted', round: open.round, attempt: open.attempt, clientId: id, upload, now: this.now });
      this.pending.push(() => ({ type: 'uploadSettled', round: open.round, attempt: open.attempt, coordinator: true }));
    } else if (choice === 6 && this.timer) {
      this.now = Math.max(this.now, this.timer.at + rng.nextInt(100));
      const { round, attempt, reason } = this.timer;
      this.timer = null;
      this.step({ type: 'timerFired', round, attempt, reason, coordinator: true });
    } else if (choice === 7) {
      // A timer of an earlier attempt, or of a round gone, changes nothing.
      const effects = this.step({ type: 'timerFired', round: this.state.committed.round, attempt: 0, reason: 'deadline', coordinator: true });
      assert.deepEqual(effects, []);
    } else if (choice === 8) {
      this.connected = this.clients.filter(() => rng.nextFloat() < 0.8);
      this.pending.push(() => ({ type: 'presenceRead', connected: [...this.connected], now: this.now }));
    } else if (open && rng.nextInt(2) === 0) {
      // Frame bytes of a client, toward the open round.
      const ids = [...open.assigned];
      this.step({ type: 'bytes', clientId: ids[rng.nextInt(ids.length)], direction: rng.nextInt(2) === 0 ? 'up' : 'down', bytes: 1 + rng.nextInt(1000) });
    }
  }
}

function run(seed: number, robustness: Robustness, g: (rng: Rng, k: number, n: number) => SeedGradient[], check: (w: World) => void): World {
  const rng = createRng(seed);
  const rules = rulesFor(rng, robustness);
  const clients = Array.from({ length: 2 + rng.nextInt(8) }, (_, i) => `c${i}`);
  const w = new World(rng, rules, clients, g);
  w.pending.push(() => ({ type: 'presenceRead', connected: [...w.connected], now: w.now }));
  for (let i = 0; i < 3000 && w.state.committed.round < rules.config.rounds && w.state.halted === null; i++) {
    w.act();
    // Nothing pending and no timer: everyone is gone; bring them back.
    if (w.pending.length === 0 && !w.timer && !w.state.open) w.pending.push(() => ({ type: 'presenceRead', connected: [...w.clients], now: w.now }));
  }
  check(w);
  return w;
}

/** Dyadic g: every sum decide forms is exact. */
const gridPairs = (rng: Rng, k: number, n: number): SeedGradient[] =>
  Array.from({ length: n }, () => ({ seed: rng.nextInt(k), g: (rng.nextInt(8192) - 4096) / 256 }));

test('random event sequences never commit a round twice, open rounds only with the clients the rules require, and commit only uploads of sampled clients', () => {
  let committed = 0;
  for (let seed = 1; seed <= 60; seed++) {
    run(seed, OFF, gridPairs, (w) => {
      committed += w.state.committed.round;
      assert.deepEqual(
        [...w.committedEmits.keys()],
        Array.from({ length: w.state.committed.round }, (_, i) => i + 1),
      );
    });
  }
  assert.ok(committed > 60, `the runs commit rounds (${committed})`);
});

test("the committed change is the accepted uploads' aggregate with error feedback, and nothing is lost over the rounds", () => {
  for (let seed = 100; seed < 140; seed++) {
    run(seed, OFF, gridPairs, (w) => {
      const { k, weighting } = w.state.rules.config;
      const total = new Float64Array(k);
      // The confirmed write of each round is its last (an earlier one failed).
      const confirmed = [...new Map(w.commits.filter((x) => w.committedEmits.has(x.round)).map((x) => [x.round, x])).values()];
      for (const c of confirmed) {
        const deltaA = aggregateContributions([...c.uploads.values()], k, weighting);
        const { change, after } = c.effect.record;
        const residual = c.effect.state.residual;
        for (let j = 0; j < k; j++) {
          // x = ΔA·2^16 + residual splits exactly into the change and the new residual.
          assert.equal(change[j] + residual[j], deltaA[j] * COEFFICIENT_SCALE + c.before.committed.residual[j]);
          total[j] += deltaA[j] * COEFFICIENT_SCALE;
        }
        assert.ok(after, 'the record carries its history');
      }
      // Error feedback loses nothing: the committed coefficients plus the residual are the sum of every
      // ΔA (up to the one rounded addition per round, as weights by examples need not be dyadic).
      for (let j = 0; j < k; j++) {
        const held = w.state.committed.coefficients[j] + w.state.committed.residual[j];
        assert.ok(Math.abs(held - total[j]) <= 1e-12 * confirmed.length * Math.max(1, Math.abs(total[j])), `seed ${j}: ${held} held, ${total[j]} aggregated`);
      }
    });
  }
});

test('bounded influence: whatever the uploads, a commit moves the coefficients by at most the bounds of its round', () => {
  // A third of the uploads are huge (±3e38, as colluders would send).
  const hostile = (rng: Rng, k: number, n: number): SeedGradient[] =>
    Array.from({ length: n }, () => ({
      seed: rng.nextInt(k),
      g: rng.nextInt(3) === 0 ? (rng.nextInt(2) === 0 ? 3e38 : -3e38) : (rng.nextInt(8192) - 4096) / 256,
    }));
  let checked = 0;
  for (let seed = 200; seed < 240; seed++) {
    run(seed, DEFAULT_ROBUSTNESS, hostile, (w) => {
      const { k, tau } = w.state.rules.config;
      for (const c of w.commits) {
        const uploads = [...c.uploads.values()];
        const cap = repeatCap(tau, 1 / k, DEFAULT_ROBUSTNESS.repeatSlack);
        const bounds = boundRound({ uploads, missing: 0, history: c.before.statistics, repeatCap: cap, tau }, DEFAULT_ROBUSTNESS);
        // Seeds named by seedMedianClients or more move by a median of the bounded sums: each at most repeatCap·gBound.
        const naming = new Map<number, number>();
        for (const u of uploads) for (const seed of new Set(u.pairs.map((p) => p.seed))) naming.set(seed, (naming.get(seed) ?? 0) + 1);
        const medianSeeds = [...naming.values()].filter((n) => n >= DEFAULT_ROBUSTNESS.seedMedianClients).length;
        let moved = 0;
        for (let j = 0; j < k; j++)
          moved += Math.abs(c.effect.record.change[j] + c.effect.state.residual[j] - c.before.committed.residual[j]) / COEFFICIENT_SCALE;
        const missingScale = bounds.gBound === Infinity ? Infinity : bounds.normBound + medianSeeds * cap * bounds.gBound;
        assert.ok(Number.isFinite(moved), 'a commit is finite');
        // The missing clients only lower the round's own statistic: the bound with none missing is the larger.
        assert.ok(moved <= missingScale * (1 + 1e-9) + 1e-9, `round ${c.round}: Σ|ΔA| = ${moved}, bound ${missingScale}`);
        checked++;
      }
    });
  }
  assert.ok(checked > 40, `commits checked (${checked})`);
});

test('a completion that no longer matches the open round, or comes twice, is ignored', () => {
  const rng = createRng(7);
  const rules = rulesFor(rng, OFF);
  let s = initialState({ ...rules, minClients: 1, config: { ...rules.config, clientsPerRound: 2 } }, emptyCommitted(rules.config.k), [], 0);
  const opened = decide(s, { type: 'presenceRead', connected: ['a', 'b'], now: 0 });
  s = opened.state;
  assert.deepEqual(
    opened.effects.map((e) => e.kind),
    ['armTimer', 'saveOpenRound'],
  );
  const saved = decide(s, { type: 'openRoundSaved', round: 1, attempt: 0 });
  assert.deepEqual(
    saved.effects.map((e) => e.kind),
    ['log', 'emit', 'assign'],
  );
  assert.deepEqual(decide(saved.state, { type: 'openRoundSaved', round: 1, attempt: 0 }).effects, []);
  s = saved.state;
  // An earlier attempt's upload completion, and a commit confirmation for a round that is not closing.
  const upload: UploadMessage = {
    type: 'upload',
    round: 1,
    examples: 1,
    lossBeforeSum: 1,
    lossBeforeCount: 1,
    lossAfterSum: 1,
    lossAfterCount: 1,
    digestRound: 0,
    digest: new Uint8Array(32),
    pairs: [{ seed: 1, g: 1 }],
  };
  assert.equal(decide(s, { type: 'uploadAccepted', round: 1, attempt: 5, clientId: 'a', upload, now: 1 }).state.open?.uploads.size, 0);
  assert.deepEqual(decide(s, { type: 'commitDone', round: 1 }), { state: s, effects: [] });
  // A timer fired on a gateway that is no longer the coordinator closes nothing.
  assert.deepEqual(decide(s, { type: 'timerFired', round: 1, attempt: 0, reason: 'deadline', coordinator: false }).effects, []);
  const fired = decide(s, { type: 'timerFired', round: 1, attempt: 0, reason: 'deadline', coordinator: true });
  assert.deepEqual(
    fired.effects.map((e) => e.kind),
    ['collectUploads'],
  );
  assert.equal(decide(fired.state, { type: 'allInChecked', round: 1, attempt: 0, allIn: true, then: 'none', coordinator: true }).effects.length, 0);
  // Nobody uploaded: the round restarts with the next attempt, once.
  const collected = decide(fired.state, { type: 'uploadsCollected', round: 1, attempt: 0, stored: new Map(), now: 2 });
  assert.equal(collected.state.open, null);
  assert.equal(collected.state.attempt, 1);
  assert.deepEqual(decide(collected.state, { type: 'uploadsCollected', round: 1, attempt: 0, stored: new Map(), now: 2 }), {
    state: collected.state,
    effects: [],
  });
});

test('the modules of the decision hold no await and read no clock', () => {
  for (const file of ['decide', 'close-round', 'state', 'inputs', 'effects']) {
    const source = readFileSync(new URL(`../../federation/engine/${file}.ts`, import.meta.url), 'utf8')
      .replace(/\/\/.*$/gm, '')
      .replace(/\/\*[\s\S]*?\*\//g, '');
    for (const banned of [
      /\bawait\b/,
      /\basync\b/,
      /\bPromise\b/,
      /Date\.now/,
      /new Date\(\)/,
      /performance\.now/,
      /Math\.random/,
      /setTimeout|setInterval|setImmediate/,
      /from 'node:(fs|net|http|https|child_process)'/,
    ]) {
      assert.doesNotMatch(source, banned, `federation/engine/${file}.ts: ${banned}`);
    }
  }
});
