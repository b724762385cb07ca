// The round engine: the federation's state machine, without sockets. It samples the clients of each
// round, sends them their catch-up change and (Pro) the seed probabilities, collects uploads until all
// arrived or the deadline fired, aggregates them with error feedback, refuses a round whose coefficients
// would leave the replicas' exact range (and stops after three refusals in a row), commits each round to
// the store before anyone hears of it, and answers clients that catch up. A transport feeds it what
// clients said (joined, uploaded, left) and carries out what it asks through the Outbox; its clock is
// injected, so tests run it with a fake one. Several engines (gateways) may share one store: only the
// store's coordinator opens, closes and commits rounds; uploads and connected clients go through the
// store, and every engine follows the rounds the store opens and commits (follow()).
import type { EventEmitter } from 'node:events';
import {
  ErrorCode,
  decodeMessage,
  encodeMessage,
  factorDelta,
  quantizeImportance,
  probabilitiesFromLevels,
  DEFAULT_PROBABILITY_BITS,
  COEFFICIENT_SCALE,
  EXACT_LIMIT,
  ZQ_MAX_ABS,
  sumAbs,
  type DigestStatus,
  type FederationConfig,
  type HelloMessage,
  type QuantizedProbabilities,
  type ServerMessage,
  type UploadMessage,
} from '../protocol';
import { fedAvgBytesPerClient } from '../protocol/wire-bytes';
import { DEFAULT_MANTISSA_BITS, quantizeWithFeedback, robustAggregate } from './aggregate';
import type { Clock, Timer } from './clock';
import type { RoundBytes, ServerEvents } from './events';
import { accumulateImportance, importanceOf } from './importance';
import type { Logger } from './log';
import { DEFAULT_PACING, pacedDeadlineMs, roundPace, type Pacing } from './pacing';
import { afterOf } from './record-chain';
import { boundRound, DEFAULT_ROBUSTNESS, HISTORY_ROUNDS, repeatCap, type Robustness, type RoundStatistics } from './robust';
import { sampleClientsWithKey, samplingKey } from './sampling';
import { StaleRoundError, type FederationState, type FederationStore, type OpenRoundRecord, type RoundRecord } from './store';

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

interface OpenRound {
  readonly round: number;
  readonly attempt: number;
  readonly assigned: Set<string>;
  readonly uploads: Map<string, UploadMessage>;
  readonly bytes: Map<string, { up: number; down: number }>;
  /** Armed on the coordinator only. */
  deadline: Timer | null;
  readonly deadlineAt: number;
  /** When it started (the clock's ms): upload times are counted from it. */
  readonly startedAt: number;
  /** Each upload's time from the start, as this engine received it. */
  readonly arrivals: Map<string, number>;
  /** Its deadline was brought forward to the recent pace (pacing.ts). */
  paced: boolean;
  closing: boolean;
}

/** Deadlines a client may miss in a row before rounds stop waiting for it (until it uploads again). */
export const MISSES_BEFORE_NOT_AWAITED = 2;

/** Refused rounds in a row after which the engine stops starting rounds. */
export const REFUSALS_BEFORE_HALT = 3;

function sameConfig(a: FederationConfig, b: FederationConfig): boolean {
  return a.k === b.k && a.federationSeed === b.federationSeed;
}

function emptyState(k: number): FederationState {
  return { round: 0, coefficients: new Float64Array(k), residual: new Float64Array(k), importanceSum: new Float64Array(k), importanceCount: new Float64Array(k) };
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** The first value of a commit that is not a finite number, in words, or null. */
function nonFiniteValue(state: FederationState, examples: number): string | null {
  if (!Number.isFinite(examples)) return 'example count';
  for (const [name, v] of [['coefficients', state.coefficients], ['residual', state.residual], ['importance sums', state.importanceSum], ['importance counts', state.importanceCount]] as const) {
    if (!v.every(Number.isFinite)) return name;
  }
  return null;
}

const sumAbsG = (pairs: readonly { readonly g: number }[]): number => pairs.reduce((s, p) => s + Math.abs(p.g), 0);

export class RoundEngine<P> {
  readonly config: FederationConfig;
  private readonly store: FederationStore;
  private readonly clock: Clock;
  private readonly outbox: Outbox<P>;
  private readonly events: EventEmitter<ServerEvents>;
  private readonly log: Logger;
  private readonly modelHashHex: string;
  private readonly generatorVersion: number;
  private readonly paramCount: number;
  private readonly minClients: number;
  private readonly probabilityBits: number;
  private readonly mantissaBits: number;
  private readonly robustness: Robustness;
  private readonly pacing: Pacing;
  /** The paces (pacing.ts) of the last committed rounds that had one, oldest first. */
  private readonly paces: number[] = [];
  /** Digests reported for states without a reference yet: round → digest → clients (and their peers). */
  private readonly digestReports = new Map<number, Map<string, Map<string, P>>>();

  private state: FederationState;
  /** Committed rounds' integer changes, by round: what catch-up sums. */
  private readonly changes = new Map<number, Float64Array>();
  /** Reference replica digests by committed round. */
  private readonly digests = new Map<number, string>();
  /**
   * The statistics of the last HISTORY_ROUNDS committed rounds, oldest first (a round committed before
   * they were kept: zeros, which count for nothing): the scales the next round's bounds are taken from.
   */
  private readonly statistics: RoundStatistics[] = [];
  /** The largest Σ|C_j| of any committed round: bounds what a client catching up from it holds. */
  private peakSumAbs = 0;
  /** Rounds refused in a row because their coefficients would leave the replicas' exact range. */
  private refusedInARow = 0;
  /** Clients whose uploads alone got the open round refused: not sampled again until it commits. */
  private readonly refusedClients = new Set<string>();
  private readonly byClient = new Map<string, Session<P>>();
  /**
   * Deadlines each client missed in a row (sampled, no upload when its round closed at the deadline);
   * from MISSES_BEFORE_NOT_AWAITED on, a round closes once its other clients uploaded. An upload resets it.
   */
  private readonly missedInARow = new Map<string, number>();
  /** The last round that closed without waiting for some of its sampled clients, and which. */
  private skipped: { readonly round: number; readonly deadlineAt: number; readonly clients: Set<string> } | null = null;
  private open: OpenRound | null = null;
  /** The store's sampling secret, once read. */
  private secret: Promise<Uint8Array> | null = null;
  /** Why the engine stopped starting rounds, when it did (a diverging federation). */
  private haltedReason: string | null = null;
  private attempt = 0;
  private starting = false;
  private closed = false;
  /** A read of the shared store in progress, and whether another was asked for meanwhile. */
  private following: Promise<void> | null = null;
  private followAgain = false;

  private constructor(options: RoundEngineOptions<P>, state: FederationState) {
    this.config = options.config;
    this.store = options.store;
    this.clock = options.clock;
    this.outbox = options.outbox;
    this.events = options.events;
    this.log = options.log;
    this.modelHashHex = hex(options.modelHash);
    this.generatorVersion = options.generatorVersion;
    this.paramCount = options.paramCount;
    this.minClients = Math.max(1, options.minClients ?? options.config.clientsPerRound);
    this.probabilityBits = options.probabilityBits ?? DEFAULT_PROBABILITY_BITS;
    this.mantissaBits = options.mantissaBits ?? DEFAULT_MANTISSA_BITS;
    this.robustness = { ...DEFAULT_ROBUSTNESS, ...options.robustness };
    this.pacing = { ...DEFAULT_PACING, ...options.pacing };
    this.state = state;
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
    const engine = new RoundEngine(options, (await store.loadState()) ?? emptyState(config.k));
    await engine.replayCommitted();
    // Read (or made) once here, so starting a round waits on no write.
    await engine.samplingSecret();
    store.watch(() => void engine.follow());
    return engine;
  }

  get committedRound(): number {
    return this.state.round;
  }

  get finished(): boolean {
    return this.state.round >= this.config.rounds;
  }

  /** Why rounds stopped for good, or null while the federation runs. */
  get halted(): string | null {
    return this.haltedReason;
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
    if (modelHash !== this.modelHashHex) return { code: ErrorCode.ModelMismatch, message: `base model ${modelHash} is not this federation's ${this.modelHashHex}` };
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
    await this.store.setPresent(id, true).catch((err: unknown) => this.log('warn', { event: 'presence_failed', clientId: id, error: (err as Error).message }));
    this.log('info', { event: 'client_joined', clientId: id, lastSyncedRound: hello.lastSyncedRound });
    this.events.emit('clientJoined', { clientId: id, lastSyncedRound: hello.lastSyncedRound });
    this.outbox.send(peer, { type: 'welcome', config: this.config, committedRound: this.state.round });
    if (this.finished) return this.sendFinalSync(session);
    const open = this.open;
    if (open && !open.closing && open.assigned.has(id) && !open.uploads.has(id)) return this.assign(session, open, this.currentProbabilities());
    return this.maybeStartRound();
  }

  /** The connection `peer` of client `clientId` went away (a later connection of the same id stays). */
  leave(peer: P, clientId: string): void {
    if (this.byClient.get(clientId)?.peer !== peer) return;
    this.byClient.delete(clientId);
    this.store.setPresent(clientId, false).catch((err: unknown) => this.log('warn', { event: 'presence_failed', clientId, error: (err as Error).message }));
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
        this.lateUpload(clientId, m.round);
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
    r.uploads.set(clientId, kept);
    r.arrivals.set(clientId, this.clock.now() - r.startedAt);
    this.missedInARow.delete(clientId);
    const digest = m.digestRound === r.round - 1 ? await this.checkDigest(r, hex(m.digest), clientId, peer) : 'mismatch';
    this.outbox.send(peer, { type: 'ack', round: r.round, status: 'accepted', digest }, r.round);
    this.events.emit('upload', { round: r.round, clientId, pairs: m.pairs.length, digest });
    // `r` may have closed and the next round opened while the digest was checked: close `r` only.
    if (this.store.coordinator && !r.closing && (await this.awaitedAllIn(r))) return this.closeRound('complete', r);
    if (this.store.coordinator && !r.closing) this.pace(r);
  }

  /**
   * Brings the round's deadline forward to the recent pace once more than half of its sampled clients
   * uploaded (pacing.ts); the configured deadline stays its latest close.
   */
  private pace(r: OpenRound): void {
    if (r.paced) return;
    const ms = pacedDeadlineMs(this.paces, r.uploads.size, r.assigned.size, this.config.deadlineMs, this.pacing);
    if (ms === null) return;
    r.paced = true;
    const at = r.startedAt + ms;
    if (at >= r.deadlineAt) return;
    r.deadline?.cancel();
    r.deadline = this.clock.setTimer(Math.max(0, at - this.clock.now()), () => this.background(this.closeRound('paced', r)));
    this.log('info', { event: 'round_paced', round: r.round, deadlineMs: ms, uploaded: r.uploads.size, sampled: r.assigned.size });
  }

  /**
   * Frame bytes of a peer (its client id once joined): counted toward `round` (default: the open round,
   * else the next), and toward the client's share of the open round when it is assigned there.
   */
  recordBytes(clientId: string | null, direction: 'up' | 'down', bytes: number, round?: number): void {
    const open = this.open;
    const r = round ?? open?.round ?? this.state.round + 1;
    if (open && open.round === r && clientId && open.assigned.has(clientId)) {
      const b = open.bytes.get(clientId) ?? { up: 0, down: 0 };
      b[direction] += bytes;
      open.bytes.set(clientId, b);
    }
    this.events.emit('bytes', { clientId, direction, bytes, round: r });
  }

  /** Stops starting rounds and cancels the open round's deadline; the committed state stays as it is. */
  close(): void {
    this.closed = true;
    this.open?.deadline?.cancel();
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
        } while (this.followAgain && !this.closed);
      } catch (err) {
        this.log('warn', { event: 'store_unavailable', error: (err as Error).message });
      } finally {
        this.following = null;
      }
    })();
    return this.following;
  }

  private async followOnce(): Promise<void> {
    // This gateway is committing a round: its own commit is not another gateway's to take over.
    if (this.closed || this.open?.closing) return;
    const committed = await this.store.committedRound();
    if (committed > this.state.round) await this.adoptCommits();
    const stored = await this.store.loadOpenRound();
    const mine = this.open;
    if (stored && stored.round === this.state.round + 1 && !this.starting && (!mine || mine.round !== stored.round || mine.attempt !== stored.attempt)) await this.adoptOpenRound(stored);
    const r = this.open;
    if (!this.store.coordinator) {
      // No longer (or not) the coordinator: another gateway's deadline rules.
      r?.deadline?.cancel();
      if (r) r.deadline = null;
      return;
    }
    if (!r) return this.maybeStartRound();
    if (r.closing) return;
    r.deadline ??= this.clock.setTimer(Math.max(0, r.deadlineAt - this.clock.now()), () => this.background(this.closeRound('deadline', r)));
    if (await this.awaitedAllIn(r)) await this.closeRound('complete', r);
  }

  /**
   * Whether the round's awaited clients have all uploaded: every sampled client, less those that missed
   * MISSES_BEFORE_NOT_AWAITED deadlines in a row and have not uploaded since (they may still upload while
   * the round is open). A round that awaits none of its clients waits for all of them or the deadline.
   */
  private async awaitedAllIn(r: OpenRound): Promise<boolean> {
    const awaited = [...r.assigned].filter((id) => (this.missedInARow.get(id) ?? 0) < MISSES_BEFORE_NOT_AWAITED);
    if (awaited.length === r.assigned.size || awaited.length === 0) return (await this.store.uploadCount(r.round)) >= r.assigned.size;
    // Uploads this gateway holds, and those that arrived at others.
    const uploaded = new Set(r.uploads.keys());
    if (awaited.some((id) => !uploaded.has(id))) for (const id of (await this.store.loadUploads(r.round)).keys()) uploaded.add(id);
    return awaited.every((id) => uploaded.has(id));
  }

  /**
   * An upload for a round that closed without waiting for its client, arriving before that round's
   * deadline: the client would have made it, so rounds wait for it again (the upload itself stays late).
   */
  private lateUpload(clientId: string, round: number): void {
    const s = this.skipped;
    if (!s || s.round !== round || !s.clients.delete(clientId) || this.clock.now() > s.deadlineAt) return;
    this.missedInARow.delete(clientId);
    this.log('info', { event: 'client_awaited_again', round, clientId });
  }

  /** A round closed at its deadline: each sampled client without an upload missed it once more in a row. */
  private countMisses(r: OpenRound): void {
    for (const id of r.assigned) {
      if (r.uploads.has(id)) continue;
      const missed = (this.missedInARow.get(id) ?? 0) + 1;
      this.missedInARow.set(id, missed);
      if (missed !== MISSES_BEFORE_NOT_AWAITED) continue;
      this.log('warn', { event: 'client_not_awaited', round: r.round, clientId: id, missed });
      this.events.emit('notAwaited', { round: r.round, clientId: id, missed });
    }
  }

  /** Work no caller awaits (a deadline, the next round): a store that fails meanwhile is logged, and the next look at the store retries. */
  private background(work: Promise<void>): void {
    work.catch((err: unknown) => this.log('warn', { event: 'store_unavailable', error: (err as Error).message }));
  }

  /** Rounds another gateway committed: the state from the store, results and final syncs to this gateway's clients. */
  private async adoptCommits(): Promise<void> {
    const state = await this.store.loadState();
    if (!state || state.round <= this.state.round) return;
    const records: RoundRecord[] = [];
    for (let x = this.state.round + 1; x <= state.round; x++) {
      const record = await this.store.loadRound(x);
      if (!record) throw new Error(`committed round ${x} is missing from the store`);
      records.push(record);
    }
    // The state moved meanwhile (this gateway committed): read again later.
    if (state.round <= this.state.round || records[0]?.round !== this.state.round + 1 || this.open?.closing) return;
    const open = this.open;
    if (open && open.round <= state.round) {
      open.deadline?.cancel();
      this.open = null;
    }
    const c = new Float64Array(this.state.coefficients);
    for (const record of records) {
      this.changes.set(record.round, record.change);
      this.remember(record.after?.robust);
      for (let j = 0; j < c.length; j++) c[j] += record.change[j];
      this.peakSumAbs = Math.max(this.peakSumAbs, sumAbs(c));
    }
    this.state = state;
    this.dropUndecidedDigests(state.round);
    this.attempt = 0;
    this.refusedInARow = 0;
    this.refusedClients.clear();
    for (const x of records) {
      const result: ServerMessage = { type: 'result', round: x.round, participants: x.participants.length, examples: x.examples, lossBefore: x.lossBefore, lossAfter: x.lossAfter };
      for (const id of x.participants) {
        const session = this.byClient.get(id);
        if (session) this.outbox.send(session.peer, result, x.round);
      }
      const bytes = this.roundBytes(open && open.round === x.round ? open : { bytes: new Map() }, x.participants.length);
      this.log('info', { event: 'round_committed', round: x.round, by: 'another gateway', participants: x.participants, examples: x.examples });
      this.events.emit('roundCommitted', { round: x.round, participants: x.participants, examples: x.examples, lossBefore: x.lossBefore, lossAfter: x.lossAfter, bytes });
    }
    if (this.finished) {
      this.log('info', { event: 'finished', round: this.state.round });
      this.events.emit('finished', { round: this.state.round });
      for (const session of this.byClient.values()) await this.sendFinalSync(session);
    }
  }

  /** A round another gateway's coordinator opened: this gateway's clients among its sampled get their assignment. */
  private async adoptOpenRound(stored: OpenRoundRecord): Promise<void> {
    this.open?.deadline?.cancel();
    const r: OpenRound = {
      round: stored.round,
      attempt: stored.attempt,
      assigned: new Set(stored.assigned),
      uploads: new Map(),
      bytes: new Map(),
      deadline: null,
      deadlineAt: stored.deadlineAt,
      startedAt: stored.deadlineAt - this.config.deadlineMs,
      arrivals: new Map(),
      paced: false,
      closing: false,
    };
    this.open = r;
    this.attempt = stored.attempt;
    this.log('info', { event: 'round_started', round: r.round, attempt: r.attempt, clients: stored.assigned, by: 'the coordinator' });
    this.events.emit('roundStarted', { round: r.round, clients: [...stored.assigned], attempt: r.attempt });
    const probabilities = this.currentProbabilities();
    for (const id of stored.assigned) {
      const session = this.byClient.get(id);
      if (session) await this.assign(session, r, probabilities);
    }
  }

  private async replayCommitted(): Promise<void> {
    const c = new Float64Array(this.config.k);
    for (let r = 1; r <= this.state.round; r++) {
      const record = await this.store.loadRound(r);
      if (!record) throw new Error(`committed round ${r} is missing from the store`);
      this.changes.set(r, record.change);
      this.remember(record.after?.robust);
      for (let j = 0; j < c.length; j++) c[j] += record.change[j];
      this.peakSumAbs = Math.max(this.peakSumAbs, sumAbs(c));
    }
  }

  /** The store's sampling secret (read once; a failed read is tried again next time). */
  private samplingSecret(): Promise<Uint8Array> {
    this.secret ??= this.store.loadSecret().catch((err: unknown) => {
      this.secret = null;
      throw err;
    });
    return this.secret;
  }

  /** A committed round's statistics into the history (none: zeros, which count for nothing). */
  private remember(statistics: RoundStatistics | undefined): void {
    this.statistics.push(statistics ?? { absG: 0, examples: 0 });
    if (this.statistics.length > HISTORY_ROUNDS) this.statistics.shift();
  }

  /** The most times one seed may appear in an upload of the open round: from τ and the largest p the round was sent. */
  private repeatCapOf(): number {
    const probabilities = this.currentProbabilities();
    const pMax = probabilities ? probabilitiesFromLevels(probabilities).reduce((m, p) => Math.max(m, p), 0) : 1 / this.config.k;
    return repeatCap(this.config.tau, pMax, this.robustness.repeatSlack);
  }

  /**
   * A client that last synced at round s applies C_r − C_s to a replica holding C_s; every value it
   * computes stays exact while max|Zq|·(Σ|C_s| + Σ|C_r − C_s|) < 2^53 (docs/zo-engine.md). Σ|C_s| +
   * Σ|C_r − C_s| ≤ 2·peak + Σ|C_r|, so this check covers every client, whenever it last synced.
   */
  private withinExactRange(next: Float64Array): boolean {
    const peak = Math.max(this.peakSumAbs, sumAbs(next));
    return ZQ_MAX_ABS * (2 * peak + sumAbs(next)) < EXACT_LIMIT;
  }

  /** C_to − C_from, summed from the committed rounds' integer changes. */
  private async changeSince(from: number, to: number): Promise<Float64Array> {
    const total = new Float64Array(this.config.k);
    if (from === 0 && to === this.state.round) return total.map((_, j) => this.state.coefficients[j]);
    for (let r = from + 1; r <= to; r++) {
      let c = this.changes.get(r);
      if (!c) {
        const record = await this.store.loadRound(r);
        if (!record) throw new Error(`committed round ${r} is missing from the store`);
        c = record.change;
        this.changes.set(r, c);
      }
      for (let j = 0; j < total.length; j++) total[j] += c[j];
    }
    return total;
  }

  private currentProbabilities(): QuantizedProbabilities | null {
    if (this.config.sampling !== 'pro') return null;
    return quantizeImportance(importanceOf(this.state.importanceSum, this.state.importanceCount), this.probabilityBits);
  }

  private async assign(session: Session<P>, round: OpenRound, probabilities: QuantizedProbabilities | null): Promise<void> {
    const base = session.syncedRound;
    const delta = factorDelta(await this.changeSince(base, round.round - 1));
    session.syncedRound = round.round - 1;
    this.outbox.send(session.peer, { type: 'round', round: round.round, baseRound: base, delta, probabilities, steps: this.config.tau }, round.round);
  }

  private async maybeStartRound(): Promise<void> {
    if (this.open || this.starting || this.closed || this.haltedReason || this.finished || !this.store.coordinator) return;
    this.starting = true;
    let connected: string[];
    let secret: Uint8Array;
    try {
      // A commit this gateway has not heard of yet (another coordinator's, or one whose answer was lost).
      if ((await this.store.committedRound()) > this.state.round) await this.adoptCommits();
      // Clients on every gateway of the store.
      connected = await this.store.listPresent();
      secret = await this.samplingSecret();
    } catch (err) {
      this.log('warn', { event: 'store_unavailable', error: (err as Error).message });
      return;
    } finally {
      this.starting = false;
    }
    if (this.open || this.closed || this.finished) return;
    const others = connected.filter((id) => !this.refusedClients.has(id));
    // Leave out clients refused this round while enough others are here; else rerun with everyone.
    const ready = others.length >= this.minClients ? others : connected;
    if (ready.length < this.minClients) return;
    this.starting = true;
    try {
      const round = this.state.round + 1;
      const attempt = this.attempt;
      // Drawn with a key from the server's secret: no one can tell the sample before the round starts.
      const chosen = sampleClientsWithKey(ready, this.config.clientsPerRound, samplingKey(secret, round, attempt));
      const r: OpenRound = {
        round,
        attempt,
        assigned: new Set(chosen),
        uploads: new Map(),
        bytes: new Map(),
        deadline: null,
        deadlineAt: this.clock.now() + this.config.deadlineMs,
        startedAt: this.clock.now(),
        arrivals: new Map(),
        paced: false,
        closing: false,
      };
      r.deadline = this.clock.setTimer(this.config.deadlineMs, () => this.background(this.closeRound('deadline', r)));
      this.open = r;
      try {
        // Every gateway learns of the round (and sends its clients their assignment) from the store.
        await this.store.saveOpenRound({ round, attempt, assigned: chosen, deadlineAt: r.deadlineAt });
      } catch (err) {
        r.deadline.cancel();
        this.open = null;
        this.log('warn', { event: 'store_unavailable', error: (err as Error).message });
        return;
      }
      const probabilities = this.currentProbabilities();
      this.log('info', { event: 'round_started', round, attempt, clients: chosen });
      this.events.emit('roundStarted', { round, clients: chosen, attempt });
      for (const id of chosen) {
        const session = this.byClient.get(id);
        if (session) await this.assign(session, r, probabilities);
      }
    } finally {
      this.starting = false;
    }
  }

  /** Closes the open round (only if it is `which`, when given): all uploads are in, or its deadline (configured or paced) fired. */
  private async closeRound(reason: 'complete' | 'deadline' | 'paced', which?: OpenRound): Promise<void> {
    const r = this.open;
    if (!r || r.closing || (which !== undefined && which !== r) || !this.store.coordinator) return;
    r.closing = true;
    r.deadline?.cancel();
    try {
      // Uploads that arrived at other gateways.
      for (const [id, frame] of await this.store.loadUploads(r.round)) {
        if (r.uploads.has(id) || !r.assigned.has(id)) continue;
        const m = decodeMessage(frame, { k: this.config.k });
        if (m.type !== 'upload') continue;
        r.uploads.set(id, m);
        // Through another gateway: its time is when this coordinator read it, at the latest.
        r.arrivals.set(id, this.clock.now() - r.startedAt);
      }
    } catch (err) {
      // Read again at the next look at the store, which arms the deadline anew.
      this.log('warn', { event: 'store_unavailable', round: r.round, error: (err as Error).message });
      r.closing = false;
      r.deadline = null;
      return;
    }
    for (const id of r.uploads.keys()) this.missedInARow.delete(id);
    // A paced deadline missed counts as a miss; an upload before the configured deadline still makes the
    // client awaited again (lateUpload), so an honest slow client is never left out for good.
    if (reason !== 'complete') this.countMisses(r);
    const notWaitedFor = reason !== 'deadline' ? [...r.assigned].filter((id) => !r.uploads.has(id)) : [];
    this.skipped = notWaitedFor.length > 0 ? { round: r.round, deadlineAt: r.deadlineAt, clients: new Set(notWaitedFor) } : null;
    const uploads = [...r.uploads.entries()];
    if (uploads.length === 0) {
      this.open = null;
      this.attempt++;
      this.log('warn', { event: 'round_restarted', round: r.round, reason: 'no upload before the deadline' });
      this.events.emit('roundRestarted', { round: r.round, reason: 'no upload before the deadline' });
      this.background(this.maybeStartRound());
      return;
    }
    // Each upload bounded by scales kept across rounds (robust.ts): repeats of a seed beyond what an
    // honest upload holds dropped, |g| clipped, the example claim capped; every client bounded is named.
    const bounds = boundRound({ uploads: uploads.map(([, u]) => u), missing: r.assigned.size - uploads.length, history: this.statistics, repeatCap: this.repeatCapOf(), tau: this.config.tau }, this.robustness);
    bounds.uploads.forEach((b, i) => {
      const countedExamples = b.contribution.examples;
      if (b.clipped === 0 && b.scaledBy === 1 && b.repeatsDropped === 0 && countedExamples === b.claimedExamples) return;
      const e = {
        round: r.round,
        clientId: uploads[i][0],
        clipped: b.clipped,
        scaledBy: b.scaledBy,
        repeatsDropped: b.repeatsDropped,
        claimedExamples: b.claimedExamples,
        countedExamples,
        gBound: bounds.gBound,
        normBound: bounds.normBound,
        examplesBound: bounds.examplesBound,
        repeatCap: bounds.repeatCap,
      };
      this.log('warn', { event: 'upload_bounded', ...e });
      this.events.emit('uploadBounded', e);
    });
    let kept = uploads.map(([id], i) => ({ id, upload: uploads[i][1], bounded: bounds.uploads[i].contribution }));
    const aggregate = (list: typeof kept): Float64Array => robustAggregate(list.map((x) => x.bounded), this.config.k, this.config.weighting, this.robustness.seedMedianClients);
    let q = quantizeWithFeedback(aggregate(kept), this.state.residual, this.mantissaBits);
    let coefficients = this.state.coefficients.map((c, j) => c + q.change[j]);
    // A round that would leave the exact range: leave out the upload with the largest Σ|g| one at a
    // time, naming its client, while others remain; with none left the round is refused.
    while (!this.withinExactRange(coefficients) && kept.length > 1) {
      const worst = kept.reduce((a, b) => (sumAbsG(b.bounded.pairs) > sumAbsG(a.bounded.pairs) ? b : a));
      kept = kept.filter((x) => x !== worst);
      const reason = `its g (Σ|g| ≈ ${sumAbsG(worst.bounded.pairs).toExponential(2)}) would push the coefficients out of the replicas' exact range`;
      this.log('error', { event: 'upload_excluded', round: r.round, clientId: worst.id, reason });
      this.events.emit('uploadExcluded', { round: r.round, clientId: worst.id, reason });
      q = quantizeWithFeedback(aggregate(kept), this.state.residual, this.mantissaBits);
      coefficients = this.state.coefficients.map((c, j) => c + q.change[j]);
    }
    if (!this.withinExactRange(coefficients)) return this.refuse(r, coefficients, kept.map((x) => x.id));
    this.refusedInARow = 0;
    this.refusedClients.clear();
    const importanceSum = new Float64Array(this.state.importanceSum);
    const importanceCount = new Float64Array(this.state.importanceCount);
    for (const x of kept) accumulateImportance(importanceSum, importanceCount, x.bounded.pairs);
    const examples = kept.reduce((s, x) => s + x.bounded.examples, 0);
    const { lossBefore, lossAfter } = this.roundLosses(r.round, kept);
    const participants = kept.map((x) => x.id);
    const next: FederationState = { round: r.round, coefficients, residual: q.residual, importanceSum, importanceCount };
    // Nothing that is not a finite number is committed (a store cannot hold it and its hash would fail).
    const nonFinite = nonFiniteValue(next, examples);
    if (nonFinite !== null) return this.refuse(r, coefficients, participants, `its ${nonFinite} would not be a finite number`);
    try {
      const committedAt = new Date(this.clock.now()).toISOString();
      // The round's history carries its statistics, so a restarted server rebuilds the same scales, and
      // the key its clients were sampled with, so the sample is reproduced from the record.
      const sampling = samplingKey(await this.samplingSecret(), r.round, r.attempt).toString('hex');
      const after = { ...afterOf(this.state, next), robust: bounds.statistics, sampling };
      await this.store.commitRound(next, { round: r.round, change: q.change, participants, examples, lossBefore, lossAfter, committedAt, after });
    } catch (err) {
      this.open = null;
      if (err instanceof StaleRoundError) {
        // Another coordinator committed this round: take its commit over.
        this.log('warn', { event: 'commit_superseded', round: r.round, error: err.message });
        if (!this.closed) void this.follow();
        return;
      }
      this.log('error', { event: 'commit_failed', round: r.round, error: (err as Error).message });
      if (!this.closed) this.background(this.maybeStartRound());
      return;
    }
    this.state = next;
    this.remember(bounds.statistics);
    const pace = roundPace([...r.arrivals].filter(([id]) => r.assigned.has(id)).map(([, ms]) => ms), r.assigned.size);
    if (pace !== null) this.paces.push(pace);
    if (this.paces.length > this.pacing.historyRounds) this.paces.shift();
    this.dropUndecidedDigests(r.round);
    this.changes.set(r.round, q.change);
    this.peakSumAbs = Math.max(this.peakSumAbs, sumAbs(coefficients));
    this.open = null;
    this.attempt = 0;
    const result: ServerMessage = { type: 'result', round: r.round, participants: participants.length, examples, lossBefore, lossAfter };
    for (const id of participants) {
      const session = this.byClient.get(id);
      if (session) this.outbox.send(session.peer, result, r.round);
    }
    const bytes = this.roundBytes(r, participants.length);
    this.log('info', { event: 'round_committed', round: r.round, reason, participants, examples, lossBefore, lossAfter, exponent: q.exponent, bytes });
    this.events.emit('roundCommitted', { round: r.round, participants, examples, lossBefore, lossAfter, bytes });
    if (this.finished) {
      this.log('info', { event: 'finished', round: this.state.round });
      this.events.emit('finished', { round: this.state.round });
      for (const session of this.byClient.values()) await this.sendFinalSync(session);
    } else {
      this.background(this.maybeStartRound());
    }
  }

  /**
   * A diverging round (huge g) would commit coefficients no replica can apply exactly: every client
   * would then fail at every later round. Refuse it; after three refusals in a row, stop the rounds.
   */
  private refuse(r: OpenRound, coefficients: Float64Array, clients: readonly string[], why?: string): void {
    this.open = null;
    this.attempt++;
    this.refusedInARow++;
    for (const id of clients) this.refusedClients.add(id);
    const reason = `the upload of ${clients.join(', ')}: ${why ?? `its coefficients would leave the replicas' exact range (Σ|A_j| ≈ ${(sumAbs(coefficients) / COEFFICIENT_SCALE).toExponential(2)}); the training diverges: lower η`}`;
    this.log('error', { event: 'round_refused', round: r.round, reason });
    this.events.emit('roundRestarted', { round: r.round, reason: `refused: ${reason}` });
    if (this.refusedInARow >= REFUSALS_BEFORE_HALT) {
      this.haltedReason = `round ${r.round} was refused three times in a row: ${reason}`;
      this.log('error', { event: 'federation_halted', round: r.round, reason: this.haltedReason });
      this.events.emit('halted', { round: r.round, reason: this.haltedReason });
      return;
    }
    this.background(this.maybeStartRound());
  }

  /**
   * The round's mean losses over its kept uploads (NaN: none reported). Each upload's sums are finite, but
   * their total need not be (two of 1.7e308): while a mean is not finite, the loss report with the largest
   * sums is left out of it, naming its client (its g still count: the losses are only reported).
   */
  private roundLosses(round: number, kept: readonly { readonly id: string; readonly upload: UploadMessage }[]): { lossBefore: number; lossAfter: number } {
    let reporting = [...kept];
    /** The mean over the reporting uploads: NaN when none reports a count, null when it is not finite. */
    const mean = (sum: (u: UploadMessage) => number, count: (u: UploadMessage) => number): number | null => {
      const n = reporting.reduce((s, x) => s + count(x.upload), 0);
      if (n === 0) return NaN;
      const v = reporting.reduce((s, x) => s + sum(x.upload), 0) / n;
      return Number.isFinite(v) ? v : null;
    };
    const size = (u: UploadMessage): number => Math.max(Math.abs(u.lossBeforeSum), Math.abs(u.lossAfterSum));
    for (;;) {
      const lossBefore = mean((u) => u.lossBeforeSum, (u) => u.lossBeforeCount);
      const lossAfter = mean((u) => u.lossAfterSum, (u) => u.lossAfterCount);
      if (lossBefore !== null && lossAfter !== null) return { lossBefore, lossAfter };
      const worst = reporting.reduce((a, b) => (size(b.upload) > size(a.upload) ? b : a));
      reporting = reporting.filter((x) => x !== worst);
      const reason = `its loss sums (${worst.upload.lossBeforeSum.toExponential(2)}, ${worst.upload.lossAfterSum.toExponential(2)}) would make the round's mean loss infinite: its loss report is left out (its g count, bounded as any other)`;
      this.log('warn', { event: 'loss_excluded', round, clientId: worst.id, reason });
      this.events.emit('lossExcluded', { round, clientId: worst.id, reason });
    }
  }

  private roundBytes(r: Pick<OpenRound, 'bytes'>, participants: number): RoundBytes {
    const perClient: Record<string, { up: number; down: number }> = {};
    let up = 0;
    let down = 0;
    for (const [id, b] of r.bytes) {
      perClient[id] = { ...b };
      up += b.up;
      down += b.down;
    }
    return { up, down, perClient, fedAvg: participants * fedAvgBytesPerClient(this.paramCount) };
  }

  private async sendFinalSync(session: Session<P>): Promise<void> {
    const base = session.syncedRound;
    const delta = factorDelta(await this.changeSince(base, this.state.round));
    session.syncedRound = this.state.round;
    this.outbox.send(session.peer, { type: 'sync', round: this.state.round, baseRound: base, delta, finished: true });
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
      this.outbox.refuse(peer, ErrorCode.DigestMismatch, `your replica at round ${round} differs from the one a majority of the clients sampled after it agree on; reload the base model and rejoin from round 0`);
    }
  }
}
