// The round engine: the federation's state machine, without sockets. Its decisions (sampling, uploads,
// pacing and deadlines, aggregation with error feedback, refusals, commits, rounds other gateways
// committed) are the pure decide() of engine/decide.ts, driven by engine/driver.ts; this class performs
// what it decides against the store, the clock and the transport's Outbox, and keeps what concerns the
// clients connected here: their sessions, catch-up changes and the digest quorum. A transport feeds it
// what clients said (joined, uploaded, left); its clock is injected, so tests run it with a fake one.
// Several engines (gateways) may share one store: only the store's coordinator opens, closes and commits
// rounds; uploads and connected clients go through the store, and every engine follows the rounds the
// store opens and commits (follow()).
import type { EventEmitter } from 'node:events';
import {
  ErrorCode,
  factorDelta,
  DEFAULT_PROBABILITY_BITS,
  sumAbs,
  type DigestStatus,
  type FederationConfig,
  type HelloMessage,
  type QuantizedProbabilities,
  type ServerMessage,
  type UploadMessage,
} from '../protocol';
import { decodeMessage, encodeMessage } from '../protocol/node/codec';
import { DEFAULT_MANTISSA_BITS } from './aggregate';
import type { Clock, Timer } from './clock';
import type { Effect } from './engine/effects';
import { Driver } from './engine/driver';
import type { EngineEvent } from './engine/inputs';
import { currentProbabilities } from './engine/close-round';
import { initialState, isFinished, type OpenRound } from './engine/state';
import type { ServerEvents } from './events';
import type { Logger } from './log';
import { DEFAULT_PACING, type Pacing } from './pacing';
import { DEFAULT_ROBUSTNESS, HISTORY_ROUNDS, type Robustness, type RoundStatistics } from './robust';
import { StaleRoundError, type FederationState, type FederationStore, type RoundRecord } from './store';
import { errorMessage } from '../protocol/errors';

export { MISSES_BEFORE_NOT_AWAITED, REFUSALS_BEFORE_HALT } from './engine/state';

/** What the engine asks of its transport; `P` is the transport's handle of one connected peer. */
export interface Outbox<P> {
  /** Sends `message` to the peer; its bytes count toward `round` (default: the open round). */
  send(to: P, message: ServerMessage, round?: number): void;
  /** Refuses what the peer sent with an ERROR of `code` (the transport closes where the code is fatal). */
  refuse(to: P, code: ErrorCode, message: string): void;
  /** Another connection took over the peer's client id: it no longer speaks for it and is refused. */
  displace(to: P, message: string): void;
}

export interface RoundEngineOptions<P> {
  readonly config: FederationConfig;
  readonly store: FederationStore;
  readonly clock: Clock;
  readonly outbox: Outbox<P>;
  readonly events: EventEmitter<ServerEvents>;
  readonly log: Logger;
  /** SHA-256 identity of the base model every client must hold. */
  readonly modelHash: Uint8Array;
  readonly generatorVersion: number;
  /** d, the model's parameter count: only used to report what FedAvg would have cost. */
  readonly paramCount: number;
  /** Connected clients needed before a round starts; default clientsPerRound. */
  readonly minClients?: number;
  readonly probabilityBits?: number;
  readonly mantissaBits?: number;
  /** Bounds on one upload's |g|, example count and repeats, and the per-seed median (robust.ts); default DEFAULT_ROBUSTNESS. */
  readonly robustness?: Partial<Robustness>;
  /** Deadlines that follow the clients' pace (pacing.ts); default DEFAULT_PACING. */
  readonly pacing?: Partial<Pacing>;
}

/** The store holds another federation (another K or federation seed). */
export class ForeignStoreError extends Error {
  constructor(readonly stored: FederationConfig) {
    super(`the store belongs to a federation with K = ${stored.k}, seed ${stored.federationSeed}`);
    this.name = 'ForeignStoreError';
  }
}

/** A joined client: the connection that speaks for it and the committed round its replica holds. */
interface Session<P> {
  readonly peer: P;
  /** The operator's cap on the examples this client may claim (its token's), if any. */
  readonly maxExamples?: number;
  /** Committed round the client's replica holds (as far as the engine has sent it). */
  syncedRound: number;
}

function sameConfig(a: FederationConfig, b: FederationConfig): boolean {
  return a.k === b.k && a.federationSeed === b.federationSeed;
}

function emptyState(k: number): FederationState {
  return {
    round: 0,
    coefficients: new Float64Array(k),
    residual: new Float64Array(k),
    importanceSum: new Float64Array(k),
    importanceCount: new Float64Array(k),
  };
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

export class RoundEngine<P> {
  readonly config: FederationConfig;
  private readonly store: FederationStore;
  private readonly clock: Clock;
  private readonly outbox: Outbox<P>;
  private readonly events: EventEmitter<ServerEvents>;
  private readonly log: Logger;
  private readonly modelHashHex: string;
  private readonly generatorVersion: number;
  private readonly driver: Driver;
  /** Digests reported for states without a reference yet: round → digest → clients (and their peers). */
  private readonly digestReports = new Map<number, Map<string, Map<string, P>>>();
  /** Committed rounds' integer changes, by round: what catch-up sums. */
  private readonly changes: Map<number, Float64Array>;
  /** Reference replica digests by committed round. */
  private readonly digests = new Map<number, string>();
  private readonly byClient = new Map<string, Session<P>>();
  /** The one round timer (a configured or paced deadline), armed on the coordinator only. */
  private timer: Timer | null = null;
  /** Reading who is connected to start a round. */
  private starting = false;
  /** A read of the shared store in progress, and whether another was asked for meanwhile. */
  private following: Promise<void> | null = null;
  private followAgain = false;

  private constructor(options: RoundEngineOptions<P>, state: FederationState, replayed: Replayed, secret: Uint8Array) {
    this.config = options.config;
    this.store = options.store;
    this.clock = options.clock;
    this.outbox = options.outbox;
    this.events = options.events;
    this.log = options.log;
    this.modelHashHex = hex(options.modelHash);
    this.generatorVersion = options.generatorVersion;
    this.changes = replayed.changes;
    const rules = {
      config: options.config,
      minClients: Math.max(1, options.minClients ?? options.config.clientsPerRound),
      probabilityBits: options.probabilityBits ?? DEFAULT_PROBABILITY_BITS,
      mantissaBits: options.mantissaBits ?? DEFAULT_MANTISSA_BITS,
      robustness: { ...DEFAULT_ROBUSTNESS, ...options.robustness },
      pacing: { ...DEFAULT_PACING, ...options.pacing },
      paramCount: options.paramCount,
      secret,
    };
    this.driver = new Driver(initialState(rules, state, replayed.statistics, replayed.peakSumAbs), (effect) => this.perform(effect));
  }

  /**
   * Opens the federation the store holds (a fresh store takes `config`) and replays its committed
   * changes once, which also warms the catch-up cache. Throws ForeignStoreError for another federation's.
   */
  static async open<P>(options: RoundEngineOptions<P>): Promise<RoundEngine<P>> {
    const { store, config } = options;
    const storedConfig = await store.loadConfig();
    if (storedConfig && !sameConfig(storedConfig, config)) throw new ForeignStoreError(storedConfig);
    if (!storedConfig) await store.saveConfig(config);
    const state = (await store.loadState()) ?? emptyState(config.k);
    const replayed = await replayCommitted(store, config.k, state.round);
    // Read (or made) once here, so starting a round waits on no read.
    const secret = await store.loadSecret();
    const engine = new RoundEngine(options, state, replayed, secret);
    store.watch(() => void engine.follow());
    return engine;
  }

  private get state(): FederationState {
    return this.driver.state.committed;
  }

  private get open(): OpenRound | null {
    return this.driver.state.open;
  }

  get committedRound(): number {
    return this.state.round;
  }

  get finished(): boolean {
    return isFinished(this.driver.state);
  }

  /** Why rounds stopped for good, or null while the federation runs. */
  get halted(): string | null {
    return this.driver.state.halted;
  }

  /** Clients joined now. */
  get clients(): number {
    return this.byClient.size;
  }

  /** The round open now and its clients, or null between rounds. */
  get openRound(): { readonly round: number; readonly attempt: number; readonly assigned: readonly string[] } | null {
    const r = this.open;
    return r && !r.closing ? { round: r.round, attempt: r.attempt, assigned: [...r.assigned] } : null;
  }

  /** Whether a hello may join this federation: null, or the refusal (the peer's token is already checked). */
  admit(hello: HelloMessage): { readonly code: ErrorCode; readonly message: string } | null {
    const modelHash = hex(hello.modelHash);
    if (modelHash !== this.modelHashHex)
      return { code: ErrorCode.ModelMismatch, message: `base model ${modelHash} is not this federation's ${this.modelHashHex}` };
    if (hello.generatorVersion !== this.generatorVersion) {
      return { code: ErrorCode.GeneratorMismatch, message: `generator version ${hello.generatorVersion}, the federation uses ${this.generatorVersion}` };
    }
    if (hello.lastSyncedRound > this.state.round) {
      return { code: ErrorCode.StateAhead, message: `client synced to round ${hello.lastSyncedRound}, the server has committed ${this.state.round}` };
    }
    return null;
  }

  /**
   * An admitted client joined through `peer`: it is welcomed and brought to the committed state as far
   * as it needs (its open assignment again, or the final state), and a round starts if enough are here.
   */
  async join(peer: P, hello: HelloMessage, grants: { readonly maxExamples?: number } = {}): Promise<void> {
    const id = hello.clientId;
    const previous = this.byClient.get(id);
    if (previous && previous.peer !== peer) this.outbox.displace(previous.peer, `client ${id} connected again`);
    this.withdrawDigestReports(id, hello.lastSyncedRound);
    const session: Session<P> = { peer, syncedRound: hello.lastSyncedRound, ...(grants.maxExamples === undefined ? {} : { maxExamples: grants.maxExamples }) };
    this.byClient.set(id, session);
    await this.store.setPresent(id, true).catch((err: unknown) => this.log('warn', { event: 'presence_failed', clientId: id, error: errorMessage(err) }));
    this.log('info', { event: 'client_joined', clientId: id, lastSyncedRound: hello.lastSyncedRound });
    this.events.emit('clientJoined', { clientId: id, lastSyncedRound: hello.lastSyncedRound });
    this.outbox.send(peer, { type: 'welcome', config: this.config, committedRound: this.state.round });
    if (this.finished) return this.sendFinalSync(session);
    const open = this.open;
    if (open && !open.closing && open.assigned.has(id) && !open.uploads.has(id)) return this.assign(session, open.round, this.probabilitiesOf());
    return this.maybeStartRound();
  }

  /** The connection `peer` of client `clientId` went away (a later connection of the same id stays). */
  leave(peer: P, clientId: string): void {
    if (this.byClient.get(clientId)?.peer !== peer) return;
    this.byClient.delete(clientId);
    this.store.setPresent(clientId, false).catch((err: unknown) => this.log('warn', { event: 'presence_failed', clientId, error: errorMessage(err) }));
    this.log('info', { event: 'client_left', clientId });
    this.events.emit('clientLeft', { clientId, reason: 'closed' });
  }

  /** An upload of joined client `clientId`, through `peer`. */
  async upload(peer: P, clientId: string, m: UploadMessage): Promise<void> {
    // A round another gateway's coordinator opened a moment ago: read the store before judging.
    if (m.round > this.state.round && this.open?.round !== m.round) await this.follow();
    const r = this.open;
    if (!r || r.closing || m.round !== r.round) {
      if (m.round <= this.state.round || (r && r.closing && m.round === r.round)) {
        await this.driver.dispatch({ type: 'lateUpload', clientId, round: m.round, now: this.clock.now() });
        this.outbox.send(peer, { type: 'ack', round: m.round, status: 'late', digest: 'reference' }, m.round);
        return;
      }
      return this.outbox.refuse(peer, ErrorCode.WrongRound, `upload for round ${m.round}, the open round is ${r ? r.round : 'none'}`);
    }
    if (!r.assigned.has(clientId)) return this.outbox.refuse(peer, ErrorCode.NotAssigned, `client ${clientId} is not sampled in round ${r.round}`);
    if (r.uploads.has(clientId)) return this.outbox.refuse(peer, ErrorCode.WrongRound, `client ${clientId} already uploaded for round ${r.round}`);
    if (m.pairs.length > this.config.tau) return this.outbox.refuse(peer, ErrorCode.Malformed, `${m.pairs.length} pairs, τ = ${this.config.tau}`);
    // The operator's cap for this client's token holds whatever it claims.
    const cap = this.byClient.get(clientId)?.maxExamples;
    const kept = cap !== undefined && m.examples > cap ? { ...m, examples: cap } : m;
    // Kept once per client and round, whichever gateway a retry arrives at; a round the coordinator
    // committed meanwhile takes it no more.
    if ((await this.store.putUpload(r.round, clientId, encodeMessage(kept))) === 'closed') {
      this.outbox.send(peer, { type: 'ack', round: m.round, status: 'late', digest: 'reference' }, m.round);
      return void this.follow();
    }
    await this.driver.dispatch({ type: 'uploadAccepted', round: r.round, attempt: r.attempt, clientId, upload: kept, now: this.clock.now() });
    const digest = m.digestRound === r.round - 1 ? await this.checkDigest(r, hex(m.digest), clientId, peer) : 'mismatch';
    this.outbox.send(peer, { type: 'ack', round: r.round, status: 'accepted', digest }, r.round);
    this.events.emit('upload', { round: r.round, clientId, pairs: m.pairs.length, digest });
    // `r` may have closed and the next round opened while the digest was checked: decide() looks at `r` only.
    await this.driver.dispatch({ type: 'uploadSettled', round: r.round, attempt: r.attempt, coordinator: this.store.coordinator });
  }

  /**
   * Frame bytes of a peer (its client id once joined): counted toward `round` (default: the open round,
   * else the next), and toward the client's share of the open round when it is assigned there.
   */
  recordBytes(clientId: string | null, direction: 'up' | 'down', bytes: number, round?: number): void {
    this.background(this.driver.dispatch({ type: 'bytes', clientId, direction, bytes, ...(round === undefined ? {} : { round }) }));
  }

  /** Stops starting rounds and cancels the open round's deadline; the committed state stays as it is. */
  close(): void {
    this.background(this.driver.dispatch({ type: 'closed' }));
  }

  /**
   * Reads the shared store again: commits and rounds another gateway's coordinator made are taken over
   * (results and catch-up for this gateway's clients), and the coordinator closes a round whose uploads
   * are all in, arms the deadline of a round it inherited, or starts the next. One read at a time.
   */
  follow(): Promise<void> {
    if (this.following) {
      this.followAgain = true;
      return this.following;
    }
    this.following = (async () => {
      try {
        do {
          this.followAgain = false;
          await this.followOnce();
        } while (this.followAgain && !this.driver.state.closed);
      } catch (err) {
        this.log('warn', { event: 'store_unavailable', error: errorMessage(err) });
      } finally {
        this.following = null;
      }
    })();
    return this.following;
  }

  private async followOnce(): Promise<void> {
    // This gateway is committing a round: its own commit is not another gateway's to take over.
    if (this.driver.state.closed || this.open?.closing) return;
    const committed = await this.store.committedRound();
    if (committed > this.state.round) await this.adoptCommits();
    const stored = await this.store.loadOpenRound();
    const mine = this.open;
    const opening = this.starting || (mine !== null && !mine.announced);
    if (stored && stored.round === this.state.round + 1 && !opening && (!mine || mine.round !== stored.round || mine.attempt !== stored.attempt)) {
      await this.driver.dispatch({ type: 'roundAdopted', record: stored });
    }
    if (this.store.coordinator && !this.open) return this.maybeStartRound();
    await this.driver.dispatch({ type: 'followed', coordinator: this.store.coordinator });
  }

  /** Work no caller awaits (a deadline, the next round): a store that fails meanwhile is logged, and the next look at the store retries. */
  private background(work: Promise<void>): void {
    work.catch((err: unknown) => this.log('warn', { event: 'store_unavailable', error: errorMessage(err) }));
  }

  /** Rounds another gateway committed: read from the store, then taken over by decide(). */
  private async adoptCommits(): Promise<void> {
    const state = await this.store.loadState();
    if (!state || state.round <= this.state.round) return;
    const records: RoundRecord[] = [];
    for (let x = this.state.round + 1; x <= state.round; x++) {
      const record = await this.store.loadRound(x);
      if (!record) throw new Error(`committed round ${x} is missing from the store`);
      records.push(record);
    }
    await this.driver.dispatch({ type: 'commitsRead', state, records });
  }

  /** Reads who is connected on every gateway (after any commit not heard of yet), then lets decide() open a round. */
  private async maybeStartRound(): Promise<void> {
    const s = this.driver.state;
    if (s.open || this.starting || s.closed || s.halted || isFinished(s) || !this.store.coordinator) return;
    this.starting = true;
    let connected: string[];
    try {
      // A commit this gateway has not heard of yet (another coordinator's, or one whose answer was lost).
      if ((await this.store.committedRound()) > this.state.round) await this.adoptCommits();
      // Clients on every gateway of the store.
      connected = await this.store.listPresent();
    } catch (err) {
      this.log('warn', { event: 'store_unavailable', error: errorMessage(err) });
      return;
    } finally {
      this.starting = false;
    }
    await this.driver.dispatch({ type: 'presenceRead', connected, now: this.clock.now() });
  }

  /** Carries out one of decide()'s effects; those on the store complete with the event they lead to. */
  private perform(effect: Effect): EngineEvent | null | void | Promise<EngineEvent | null> {
    switch (effect.kind) {
      case 'log':
        return this.log(effect.level, effect.fields);
      case 'emit':
        return void (this.events.emit as (name: string, payload: unknown) => boolean)(effect.name, effect.payload);
      case 'armTimer': {
        this.timer?.cancel();
        const { round, attempt, reason } = effect;
        this.timer = this.clock.setTimer(Math.max(0, effect.at - this.clock.now()), () => {
          this.timer = null;
          this.background(this.driver.dispatch({ type: 'timerFired', round, attempt, reason, coordinator: this.store.coordinator }));
        });
        return;
      }
      case 'cancelTimer':
        this.timer?.cancel();
        this.timer = null;
        return;
      case 'saveOpenRound': {
        const { round, attempt } = effect.record;
        // Every gateway learns of the round (and sends its clients their assignment) from the store.
        return this.store.saveOpenRound(effect.record).then(
          (): EngineEvent => ({ type: 'openRoundSaved', round, attempt }),
          (err: unknown): EngineEvent => ({ type: 'openRoundSaveFailed', round, attempt, error: errorMessage(err) }),
        );
      }
      case 'assign':
        for (const id of effect.clients) {
          const session = this.byClient.get(id);
          if (session) this.assign(session, effect.round, effect.probabilities);
        }
        return;
      case 'checkAllIn':
        return this.checkAllIn(effect);
      case 'collectUploads':
        return this.collectUploads(effect.round, effect.attempt);
      case 'commit':
        return this.store.commitRound(effect.state, effect.record).then(
          (): EngineEvent => ({ type: 'commitDone', round: effect.record.round }),
          (err: unknown): EngineEvent => ({
            type: 'commitFailed',
            round: effect.record.round,
            stale: err instanceof StaleRoundError,
            error: errorMessage(err),
          }),
        );
      case 'committed':
        for (const { round, change } of effect.changes) this.changes.set(round, change);
        this.dropUndecidedDigests(effect.round);
        return;
      case 'send':
        for (const id of effect.clients) {
          const session = this.byClient.get(id);
          if (session) this.outbox.send(session.peer, effect.message, effect.round);
        }
        return;
      case 'finalSync':
        for (const session of this.byClient.values()) this.sendFinalSync(session);
        return;
      case 'startRound':
        return this.background(this.maybeStartRound());
      case 'follow':
        return void this.follow();
    }
  }

  /** Whether the store holds an upload of each awaited client: uploads this gateway holds, and those that arrived at others. */
  private async checkAllIn(e: Extract<Effect, { kind: 'checkAllIn' }>): Promise<EngineEvent> {
    const base = { type: 'allInChecked', round: e.round, attempt: e.attempt, then: e.then } as const;
    if (e.awaited === null) return { ...base, allIn: (await this.store.uploadCount(e.round)) >= e.sampled, coordinator: this.store.coordinator };
    const uploaded = new Set(e.local);
    if (e.awaited.some((id) => !uploaded.has(id))) for (const id of (await this.store.loadUploads(e.round)).keys()) uploaded.add(id);
    return { ...base, allIn: e.awaited.every((id) => uploaded.has(id)), coordinator: this.store.coordinator };
  }

  /** The uploads of a closing round the store holds, decoded (those that arrived at other gateways too). */
  private async collectUploads(round: number, attempt: number): Promise<EngineEvent> {
    let frames: Map<string, Uint8Array>;
    try {
      frames = await this.store.loadUploads(round);
    } catch (err) {
      return { type: 'collectFailed', round, attempt, error: errorMessage(err) };
    }
    const stored = new Map<string, UploadMessage>();
    for (const [id, frame] of frames) {
      const m = decodeMessage(frame, { k: this.config.k });
      if (m.type === 'upload') stored.set(id, m);
    }
    return { type: 'uploadsCollected', round, attempt, stored, now: this.clock.now() };
  }

  private probabilitiesOf(): QuantizedProbabilities | null {
    return currentProbabilities(this.driver.state);
  }

  private sendFinalSync(session: Session<P>): void {
    const base = session.syncedRound;
    const delta = factorDelta(this.changeSince(base, this.state.round));
    session.syncedRound = this.state.round;
    this.outbox.send(session.peer, { type: 'sync', round: this.state.round, baseRound: base, delta, finished: true });
  }

  /** C_to − C_from, summed from the committed rounds' integer changes (all of them held since open). */
  private changeSince(from: number, to: number): Float64Array {
    const total = new Float64Array(this.config.k);
    if (from === 0 && to === this.state.round) return total.map((_, j) => this.state.coefficients[j]);
    for (let r = from + 1; r <= to; r++) {
      const c = this.changes.get(r);
      if (!c) throw new Error(`committed round ${r} is missing from the catch-up changes`);
      for (let j = 0; j < total.length; j++) total[j] += c[j];
    }
    return total;
  }

  private assign(session: Session<P>, round: number, probabilities: QuantizedProbabilities | null): void {
    const base = session.syncedRound;
    const delta = factorDelta(this.changeSince(base, round - 1));
    session.syncedRound = round - 1;
    this.outbox.send(session.peer, { type: 'round', round, baseRound: base, delta, probabilities, steps: this.config.tau }, round);
  }

  /**
   * The state before open round `r` gets its reference digest only from a strict majority of `r`'s
   * sampled clients (distinct clients, each its own token's): until one digest has more than half of them
   * it is pending, and with no majority it stays undecided and nobody is told anything, so a minority
   * that reports first captures nothing. Once decided, every client that reported another is told
   * (DigestMismatch) and later reports are compared.
   */
  private async checkDigest(r: OpenRound, digest: string, clientId: string, peer: P): Promise<DigestStatus> {
    const round = r.round - 1;
    const expected = this.digests.get(round) ?? (await this.store.loadDigest(round));
    if (expected === null) {
      const reports = this.digestReports.get(round) ?? new Map<string, Map<string, P>>();
      this.digestReports.set(round, reports);
      const agreeing = reports.get(digest) ?? new Map<string, P>();
      reports.set(digest, agreeing);
      for (const other of reports.values()) other.delete(clientId);
      agreeing.set(clientId, peer);
      // Only this attempt's sampled clients count: reports of an earlier attempt's sample stay pending.
      const votes = [...agreeing.keys()].filter((id) => r.assigned.has(id)).length;
      if (2 * votes <= r.assigned.size) return 'pending';
      this.digests.set(round, digest);
      await this.store.saveDigest(round, digest);
      this.digestReports.delete(round);
      this.log('info', { event: 'digest_reference', round, clients: votes, sampled: r.assigned.size });
      for (const [other, clients] of reports) {
        if (other === digest) continue;
        for (const [id, p] of clients) this.reportMismatch(round, id, p, digest, other);
      }
      return 'reference';
    }
    this.digests.set(round, expected);
    if (expected === digest) return 'match';
    this.reportMismatch(round, clientId, peer, expected, digest);
    return 'mismatch';
  }

  /** Reports of states whose reporting round has committed: no later report can make a majority. */
  private dropUndecidedDigests(committed: number): void {
    for (const [round, reports] of this.digestReports) {
      if (round >= committed) continue;
      this.digestReports.delete(round);
      const counts = [...reports.values()].map((c) => c.size).filter((n) => n > 0);
      if (counts.length > 0) this.log('warn', { event: 'digest_undecided', round, reports: counts });
    }
  }

  /**
   * A client that rejoins holding an earlier round than it reported (it rebuilt its replica after a
   * mismatch) no longer holds the replicas its pending reports describe: they count for no quorum and
   * are not flagged when one is decided.
   */
  private withdrawDigestReports(clientId: string, heldRound: number): void {
    for (const [round, reports] of this.digestReports) {
      if (round <= heldRound) continue;
      for (const clients of reports.values()) clients.delete(clientId);
    }
  }

  private reportMismatch(round: number, clientId: string, peer: P, expected: string, actual: string): void {
    this.log('warn', { event: 'digest_mismatch', round, clientId, expected, actual });
    this.events.emit('digestMismatch', { round, clientId, expected, actual });
    const live = this.byClient.get(clientId);
    if (live && live.peer === peer) {
      this.outbox.refuse(
        peer,
        ErrorCode.DigestMismatch,
        `your replica at round ${round} differs from the one a majority of the clients sampled after it agree on; reload the base model and rejoin from round 0`,
      );
    }
  }
}

interface Replayed {
  readonly changes: Map<number, Float64Array>;
  readonly statistics: RoundStatistics[];
  readonly peakSumAbs: number;
}

/** Every committed round's change (the catch-up cache), the scales' history and the peak Σ|C|, from the store's records. */
async function replayCommitted(store: FederationStore, k: number, committed: number): Promise<Replayed> {
  const changes = new Map<number, Float64Array>();
  const statistics: RoundStatistics[] = [];
  let peakSumAbs = 0;
  const c = new Float64Array(k);
  for (let r = 1; r <= committed; r++) {
    const record = await store.loadRound(r);
    if (!record) throw new Error(`committed round ${r} is missing from the store`);
    changes.set(r, record.change);
    // A round committed before the statistics were kept: zeros, which count for nothing.
    statistics.push(record.after?.robust ?? { absG: 0, examples: 0 });
    if (statistics.length > HISTORY_ROUNDS) statistics.shift();
    for (let j = 0; j < c.length; j++) c[j] += record.change[j];
    peakSumAbs = Math.max(peakSumAbs, sumAbs(c));
  }
  return { changes, statistics, peakSumAbs };
}
