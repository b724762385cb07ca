// The federation server: WebSocket transport (ws, optionally over TLS), authentication, limits, and
// the round engine (sampling, deadlines, aggregation, Pro probabilities, catch-up, durable commits).
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Writable } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import {
  ErrorCode,
  ProtocolError,
  decodeMessage,
  encodeMessage,
  factorDelta,
  quantiseImportance,
  DEFAULT_PROBABILITY_BITS,
  EXACT_LIMIT,
  ZQ_MAX_ABS,
  sumAbs,
  type DigestStatus,
  type FederationConfig,
  type HelloMessage,
  type QuantisedProbabilities,
  type ServerMessage,
  type UploadMessage,
} from '../protocol';
import { aggregateContributions, DEFAULT_MANTISSA_BITS, quantiseWithFeedback } from './aggregate';
import type { RoundBytes, ServerEvents } from './events';
import { accumulateImportance, importanceOf } from './importance';
import { LevelFederationStore } from './level-store';
import { jsonLinesLogger, type Logger } from './log';
import { TokenBucket } from './rate-limit';
import { sampleClients } from './sampling';
import type { FederationState, FederationStore } from './store';
import { verifyToken } from './tokens';
import { fedAvgBytesPerClient, wsFrameBytes } from '../protocol/wire-bytes';

export interface ServerLimits {
  /** Largest accepted frame payload; larger ones get a TooLarge error (4× this closes at the ws layer). */
  readonly maxMessageBytes: number;
  readonly maxConnections: number;
  readonly messagesPerSecond: number;
  readonly messageBurst: number;
  /** A connection that has not said HELLO by then is closed. */
  readonly helloTimeoutMs: number;
  /** Ping interval; a peer that missed the previous pong is dropped. */
  readonly heartbeatMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxMessageBytes: 1 << 20,
  maxConnections: 10_000,
  messagesPerSecond: 20,
  messageBurst: 40,
  helloTimeoutMs: 10_000,
  heartbeatMs: 15_000,
};

export interface ServerOptions {
  readonly config: FederationConfig;
  /** SHA-256 identity of the base model every client must hold. */
  readonly modelHash: Uint8Array;
  readonly generatorVersion: number;
  /** d, the model's parameter count: only used to report what FedAvg would have cost. */
  readonly paramCount: number;
  /** Directory of the embedded store; ignored when `store` is given. */
  readonly storePath?: string;
  readonly store?: FederationStore;
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /** When false, any token is accepted (a local, trusted federation). Default true. */
  readonly requireToken?: boolean;
  /** Connected clients needed before a round starts; default clientsPerRound. */
  readonly minClients?: number;
  readonly limits?: Partial<ServerLimits>;
  readonly probabilityBits?: number;
  readonly mantissaBits?: number;
  /** JSON-lines log destination. */
  readonly log?: Writable;
}

export interface ServerStats {
  readonly committedRound: number;
  readonly finished: boolean;
  readonly connections: number;
  readonly clients: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
}

export interface FederationServer {
  readonly url: string;
  readonly port: number;
  readonly events: EventEmitter<ServerEvents>;
  readonly store: FederationStore;
  stats(): ServerStats;
  close(): Promise<void>;
}

interface Connection {
  readonly ws: WebSocket;
  readonly bucket: TokenBucket;
  clientId: string | null;
  /** Committed round the client's replica holds (as far as the server has sent it). */
  syncedRound: number;
  alive: boolean;
  helloTimer: NodeJS.Timeout | null;
  /** hello is being verified (async): further frames wait for the verdict. */
  pendingHello: boolean;
}

interface OpenRound {
  readonly round: number;
  readonly attempt: number;
  readonly assigned: Set<string>;
  readonly uploads: Map<string, UploadMessage>;
  readonly bytes: Map<string, { up: number; down: number }>;
  deadline: NodeJS.Timeout;
  closing: boolean;
}

/** Closing error codes: the peer is broken or not allowed; the others leave the connection open. */
const FATAL = new Set<number>([
  ErrorCode.Malformed,
  ErrorCode.Truncated,
  ErrorCode.UnsupportedVersion,
  ErrorCode.UnknownType,
  ErrorCode.SeedOutOfRange,
  ErrorCode.NonFinite,
  ErrorCode.TooLarge,
  ErrorCode.AuthFailed,
  ErrorCode.ModelMismatch,
  ErrorCode.GeneratorMismatch,
  ErrorCode.RateLimited,
  ErrorCode.ServerFull,
  ErrorCode.UnexpectedMessage,
  ErrorCode.DuplicateClient,
  ErrorCode.StateAhead,
  ErrorCode.HelloTimeout,
]);

function sameConfig(a: FederationConfig, b: FederationConfig): boolean {
  return a.k === b.k && a.federationSeed === b.federationSeed;
}

function emptyState(k: number): FederationState {
  return { round: 0, coefficients: new Float64Array(k), residual: new Float64Array(k), importanceSum: new Float64Array(k), importanceCount: new Float64Array(k) };
}

function rawToBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

export async function startServer(options: ServerOptions): Promise<FederationServer> {
  const config = options.config;
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const log: Logger = jsonLinesLogger(options.log);
  const events = new EventEmitter<ServerEvents>();
  const minClients = Math.max(1, options.minClients ?? config.clientsPerRound);
  const requireToken = options.requireToken ?? true;
  const probabilityBits = options.probabilityBits ?? DEFAULT_PROBABILITY_BITS;
  const mantissaBits = options.mantissaBits ?? DEFAULT_MANTISSA_BITS;
  const modelHashHex = Buffer.from(options.modelHash).toString('hex');

  if (!options.store && !options.storePath) throw new Error('startServer needs a storePath or a store');
  const store = options.store ?? (await LevelFederationStore.open(options.storePath as string));
  const storedConfig = await store.loadConfig();
  if (storedConfig && !sameConfig(storedConfig, config)) {
    await store.close();
    throw new Error(`the store at ${options.storePath ?? '(custom store)'} belongs to a federation with K = ${storedConfig.k}, seed ${storedConfig.federationSeed}`);
  }
  if (!storedConfig) await store.saveConfig(config);
  let state: FederationState = (await store.loadState()) ?? emptyState(config.k);
  const changes = new Map<number, Float64Array>();
  const digests = new Map<number, string>();
  /** The largest Σ|C_j| of any committed round: bounds what a client catching up from it holds. */
  let peakSumAbs = await peakCommittedSumAbs();
  /** Rounds refused in a row because their coefficients would leave the replicas' exact range. */
  let refusedInARow = 0;

  const connections = new Set<Connection>();
  const byClient = new Map<string, Connection>();
  let open: OpenRound | null = null;
  /** Why the server stopped starting rounds, when it did (a diverging federation). */
  let halted: string | null = null;
  let attempt = 0;
  let starting = false;
  let closed = false;
  let bytesUp = 0;
  let bytesDown = 0;
  const finished = (): boolean => state.round >= config.rounds;

  const http: HttpServer = options.tls
    ? createHttpsServer({ cert: readFileSync(options.tls.certFile), key: readFileSync(options.tls.keyFile) })
    : createHttpServer();
  const wss = new WebSocketServer({ server: http, maxPayload: limits.maxMessageBytes * 4, perMessageDeflate: false });
  // ws re-emits the HTTP server's errors; a listen failure is reported by the promise below instead.
  wss.on('error', (err) => log('error', { event: 'server_error', error: err.message }));

  function account(conn: Connection, direction: 'up' | 'down', payload: number, round?: number): void {
    const bytes = wsFrameBytes(payload, direction === 'up');
    if (direction === 'up') bytesUp += bytes;
    else bytesDown += bytes;
    const r = round ?? open?.round ?? state.round + 1;
    if (open && open.round === r && conn.clientId && open.assigned.has(conn.clientId)) {
      const b = open.bytes.get(conn.clientId) ?? { up: 0, down: 0 };
      b[direction] += bytes;
      open.bytes.set(conn.clientId, b);
    }
    events.emit('bytes', { clientId: conn.clientId, direction, bytes, round: r });
  }

  function send(conn: Connection, m: ServerMessage, round?: number): void {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    const frame = encodeMessage(m);
    conn.ws.send(frame);
    account(conn, 'down', frame.length, round);
  }

  function reject(conn: Connection, code: ErrorCode, message: string): void {
    log('warn', { event: 'rejected', clientId: conn.clientId, code, message });
    events.emit('rejected', { clientId: conn.clientId, code, message });
    send(conn, { type: 'error', code, message });
    if (FATAL.has(code)) conn.ws.close(4000 + code, message.slice(0, 100));
  }

  /** Replays the committed changes once at start-up (they also warm the catch-up cache). */
  async function peakCommittedSumAbs(): Promise<number> {
    const c = new Float64Array(config.k);
    let peak = 0;
    for (let r = 1; r <= state.round; r++) {
      const record = await store.loadRound(r);
      if (!record) throw new Error(`committed round ${r} is missing from the store`);
      changes.set(r, record.change);
      for (let j = 0; j < c.length; j++) c[j] += record.change[j];
      peak = Math.max(peak, sumAbs(c));
    }
    return peak;
  }

  /**
   * A client that last synced at round s applies C_r − C_s to a replica holding C_s; every value it
   * computes stays exact while max|Zq|·(Σ|C_s| + Σ|C_r − C_s|) < 2^53 (docs/zo-engine.md). Σ|C_s| +
   * Σ|C_r − C_s| ≤ 2·peak + Σ|C_r|, so this check covers every client, whenever it last synced.
   */
  function withinExactRange(next: Float64Array): boolean {
    const peak = Math.max(peakSumAbs, sumAbs(next));
    return ZQ_MAX_ABS * (2 * peak + sumAbs(next)) < EXACT_LIMIT;
  }

  /** C_to − C_from, summed from the committed rounds' integer changes. */
  async function changeSince(from: number, to: number): Promise<Float64Array> {
    const total = new Float64Array(config.k);
    if (from === 0 && to === state.round) return total.map((_, j) => state.coefficients[j]);
    for (let r = from + 1; r <= to; r++) {
      let c = changes.get(r);
      if (!c) {
        const record = await store.loadRound(r);
        if (!record) throw new Error(`committed round ${r} is missing from the store`);
        c = record.change;
        changes.set(r, c);
      }
      for (let j = 0; j < total.length; j++) total[j] += c[j];
    }
    return total;
  }

  function currentProbabilities(): QuantisedProbabilities | null {
    if (config.sampling !== 'pro') return null;
    return quantiseImportance(importanceOf(state.importanceSum, state.importanceCount), probabilityBits);
  }

  async function assign(conn: Connection, round: OpenRound, probabilities: QuantisedProbabilities | null): Promise<void> {
    const base = conn.syncedRound;
    const delta = factorDelta(await changeSince(base, round.round - 1));
    conn.syncedRound = round.round - 1;
    send(conn, { type: 'round', round: round.round, baseRound: base, delta, probabilities, steps: config.tau }, round.round);
  }

  async function maybeStartRound(): Promise<void> {
    if (open || starting || closed || halted || finished()) return;
    const ready = [...byClient.keys()];
    if (ready.length < minClients) return;
    starting = true;
    try {
      const round = state.round + 1;
      const chosen = sampleClients(ready, config.clientsPerRound, config.federationSeed, round, attempt);
      const r: OpenRound = {
        round,
        attempt,
        assigned: new Set(chosen),
        uploads: new Map(),
        bytes: new Map(),
        deadline: setTimeout(() => void closeRound('deadline'), config.deadlineMs),
        closing: false,
      };
      open = r;
      const probabilities = currentProbabilities();
      log('info', { event: 'round_started', round, attempt, clients: chosen });
      events.emit('roundStarted', { round, clients: chosen, attempt });
      for (const id of chosen) {
        const conn = byClient.get(id);
        if (conn) await assign(conn, r, probabilities);
      }
    } finally {
      starting = false;
    }
  }

  async function closeRound(reason: 'complete' | 'deadline'): Promise<void> {
    const r = open;
    if (!r || r.closing) return;
    r.closing = true;
    clearTimeout(r.deadline);
    const uploads = [...r.uploads.entries()];
    if (uploads.length === 0) {
      open = null;
      attempt++;
      log('warn', { event: 'round_restarted', round: r.round, reason: 'no upload before the deadline' });
      events.emit('roundRestarted', { round: r.round, reason: 'no upload before the deadline' });
      void maybeStartRound();
      return;
    }
    const deltaA = aggregateContributions(uploads.map(([, u]) => u), config.k, config.weighting);
    const q = quantiseWithFeedback(deltaA, state.residual, mantissaBits);
    const coefficients = state.coefficients.map((c, j) => c + q.change[j]);
    if (!withinExactRange(coefficients)) {
      // A diverging round (huge g) would commit coefficients no replica can apply exactly: every client
      // would then fail at every later round. Refuse it; after three refusals in a row, stop the rounds.
      open = null;
      attempt++;
      refusedInARow++;
      const reason = `its coefficients would leave the replicas' exact range (Σ|A_j| ≈ ${(sumAbs(coefficients) / 65536).toExponential(2)}); the training diverges: lower η`;
      log('error', { event: 'round_refused', round: r.round, reason });
      events.emit('roundRestarted', { round: r.round, reason: `refused: ${reason}` });
      if (refusedInARow >= 3) {
        halted = `round ${r.round} was refused three times in a row: ${reason}`;
        log('error', { event: 'federation_halted', round: r.round, reason: halted });
        events.emit('halted', { round: r.round, reason: halted });
        return;
      }
      void maybeStartRound();
      return;
    }
    refusedInARow = 0;
    const importanceSum = new Float64Array(state.importanceSum);
    const importanceCount = new Float64Array(state.importanceCount);
    for (const [, u] of uploads) accumulateImportance(importanceSum, importanceCount, u.pairs);
    const examples = uploads.reduce((s, [, u]) => s + u.examples, 0);
    const mean = (sum: (u: UploadMessage) => number, count: (u: UploadMessage) => number): number => {
      const n = uploads.reduce((s, [, u]) => s + count(u), 0);
      return n > 0 ? uploads.reduce((s, [, u]) => s + sum(u), 0) / n : NaN;
    };
    const lossBefore = mean((u) => u.lossBeforeSum, (u) => u.lossBeforeCount);
    const lossAfter = mean((u) => u.lossAfterSum, (u) => u.lossAfterCount);
    const participants = uploads.map(([id]) => id);
    const next: FederationState = { round: r.round, coefficients, residual: q.residual, importanceSum, importanceCount };
    try {
      await store.commitRound(next, { round: r.round, change: q.change, participants, examples, lossBefore, lossAfter, committedAt: new Date().toISOString() });
    } catch (err) {
      log('error', { event: 'commit_failed', round: r.round, error: (err as Error).message });
      open = null;
      if (!closed) void maybeStartRound();
      return;
    }
    state = next;
    changes.set(r.round, q.change);
    peakSumAbs = Math.max(peakSumAbs, sumAbs(coefficients));
    open = null;
    attempt = 0;
    const result: ServerMessage = { type: 'result', round: r.round, participants: participants.length, examples, lossBefore, lossAfter };
    for (const id of participants) {
      const conn = byClient.get(id);
      if (conn) send(conn, result, r.round);
    }
    const perClient: Record<string, { up: number; down: number }> = {};
    let up = 0;
    let down = 0;
    for (const [id, b] of r.bytes) {
      perClient[id] = { ...b };
      up += b.up;
      down += b.down;
    }
    const bytes: RoundBytes = { up, down, perClient, fedAvg: participants.length * fedAvgBytesPerClient(options.paramCount) };
    log('info', { event: 'round_committed', round: r.round, reason, participants, examples, lossBefore, lossAfter, exponent: q.exponent, bytes });
    events.emit('roundCommitted', { round: r.round, participants, examples, lossBefore, lossAfter, bytes });
    if (finished()) {
      log('info', { event: 'finished', round: state.round });
      events.emit('finished', { round: state.round });
      for (const conn of byClient.values()) await sendFinalSync(conn);
    } else {
      void maybeStartRound();
    }
  }

  async function sendFinalSync(conn: Connection): Promise<void> {
    const base = conn.syncedRound;
    const delta = factorDelta(await changeSince(base, state.round));
    conn.syncedRound = state.round;
    send(conn, { type: 'sync', round: state.round, baseRound: base, delta, finished: true });
  }

  async function checkDigest(round: number, digest: string, clientId: string): Promise<DigestStatus> {
    const expected = digests.get(round) ?? (await store.loadDigest(round));
    if (expected === null) {
      digests.set(round, digest);
      await store.saveDigest(round, digest);
      return 'reference';
    }
    digests.set(round, expected);
    if (expected === digest) return 'match';
    log('warn', { event: 'digest_mismatch', round, clientId, expected, actual: digest });
    events.emit('digestMismatch', { round, clientId, expected, actual: digest });
    return 'mismatch';
  }

  async function onHello(conn: Connection, m: HelloMessage): Promise<void> {
    if (conn.helloTimer) clearTimeout(conn.helloTimer);
    conn.helloTimer = null;
    if (requireToken && (await verifyToken(store, m.token)) === null) return reject(conn, ErrorCode.AuthFailed, 'the token is unknown or revoked');
    if (Buffer.from(m.modelHash).toString('hex') !== modelHashHex) {
      return reject(conn, ErrorCode.ModelMismatch, `base model ${Buffer.from(m.modelHash).toString('hex')} is not this federation's ${modelHashHex}`);
    }
    if (m.generatorVersion !== options.generatorVersion) {
      return reject(conn, ErrorCode.GeneratorMismatch, `generator version ${m.generatorVersion}, the federation uses ${options.generatorVersion}`);
    }
    if (m.lastSyncedRound > state.round) {
      return reject(conn, ErrorCode.StateAhead, `client synced to round ${m.lastSyncedRound}, the server has committed ${state.round}`);
    }
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    const previous = byClient.get(m.clientId);
    if (previous && previous !== conn) {
      previous.clientId = null;
      reject(previous, ErrorCode.DuplicateClient, `client ${m.clientId} connected again`);
    }
    conn.clientId = m.clientId;
    conn.syncedRound = m.lastSyncedRound;
    byClient.set(m.clientId, conn);
    log('info', { event: 'client_joined', clientId: m.clientId, lastSyncedRound: m.lastSyncedRound });
    events.emit('clientJoined', { clientId: m.clientId, lastSyncedRound: m.lastSyncedRound });
    send(conn, { type: 'welcome', config, committedRound: state.round });
    if (finished()) return sendFinalSync(conn);
    if (open && !open.closing && open.assigned.has(m.clientId) && !open.uploads.has(m.clientId)) {
      return assign(conn, open, currentProbabilities());
    }
    return maybeStartRound();
  }

  async function onUpload(conn: Connection, id: string, m: UploadMessage): Promise<void> {
    const r = open;
    if (!r || r.closing || m.round !== r.round) {
      if (m.round <= state.round || (r && r.closing && m.round === r.round)) {
        send(conn, { type: 'ack', round: m.round, status: 'late', digest: 'reference' }, m.round);
        return;
      }
      return reject(conn, ErrorCode.WrongRound, `upload for round ${m.round}, the open round is ${r ? r.round : 'none'}`);
    }
    if (!r.assigned.has(id)) return reject(conn, ErrorCode.NotAssigned, `client ${id} is not sampled in round ${r.round}`);
    if (r.uploads.has(id)) return reject(conn, ErrorCode.WrongRound, `client ${id} already uploaded for round ${r.round}`);
    if (m.pairs.length > config.tau) return reject(conn, ErrorCode.Malformed, `${m.pairs.length} pairs, τ = ${config.tau}`);
    r.uploads.set(id, m);
    const digest = m.digestRound === r.round - 1 ? await checkDigest(m.digestRound, Buffer.from(m.digest).toString('hex'), id) : 'mismatch';
    send(conn, { type: 'ack', round: r.round, status: 'accepted', digest }, r.round);
    events.emit('upload', { round: r.round, clientId: id, pairs: m.pairs.length, digest });
    if ([...r.assigned].every((c) => r.uploads.has(c))) await closeRound('complete');
  }

  /** Frames of one connection are handled one after another, in order. */
  function onFrame(conn: Connection, data: RawData, isBinary: boolean): Promise<void> {
    const frame = rawToBytes(data);
    account(conn, 'up', frame.length);
    if (!conn.bucket.take()) return Promise.resolve(reject(conn, ErrorCode.RateLimited, `more than ${limits.messagesPerSecond} messages per second`));
    if (!isBinary) return Promise.resolve(reject(conn, ErrorCode.Malformed, 'text frames are not part of the protocol'));
    if (frame.length > limits.maxMessageBytes) return Promise.resolve(reject(conn, ErrorCode.TooLarge, `frame of ${frame.length} bytes exceeds ${limits.maxMessageBytes}`));
    let m;
    try {
      m = decodeMessage(frame, { k: config.k });
    } catch (err) {
      if (err instanceof ProtocolError) return Promise.resolve(reject(conn, err.code, err.message));
      throw err;
    }
    if (m.type === 'hello') {
      if (conn.clientId !== null || conn.pendingHello) return Promise.resolve(reject(conn, ErrorCode.UnexpectedMessage, 'hello sent twice'));
      conn.pendingHello = true;
      return onHello(conn, m).finally(() => {
        conn.pendingHello = false;
      });
    }
    if (conn.clientId === null) return Promise.resolve(reject(conn, ErrorCode.UnexpectedMessage, `${m.type} before a successful hello`));
    if (m.type === 'upload') return onUpload(conn, conn.clientId, m);
    if (m.type === 'error') {
      log('warn', { event: 'client_reported_error', clientId: conn.clientId, code: m.code, message: m.message });
      return Promise.resolve();
    }
    return Promise.resolve(reject(conn, ErrorCode.UnexpectedMessage, `${m.type} is a server message`));
  }

  wss.on('connection', (ws) => {
    const conn: Connection = { ws, bucket: new TokenBucket(limits.messagesPerSecond, limits.messageBurst), clientId: null, syncedRound: 0, alive: true, helloTimer: null, pendingHello: false };
    connections.add(conn);
    if (connections.size > limits.maxConnections) {
      // Never counted: a refused connection must not hold a slot (it gets no close handler below).
      connections.delete(conn);
      reject(conn, ErrorCode.ServerFull, `the server holds its maximum of ${limits.maxConnections} connections`);
      return;
    }
    conn.helloTimer = setTimeout(() => reject(conn, ErrorCode.HelloTimeout, `no hello within ${limits.helloTimeoutMs} ms`), limits.helloTimeoutMs);
    let queue = Promise.resolve();
    ws.on('message', (data, isBinary) => {
      queue = queue
        .then(() => onFrame(conn, data, isBinary))
        .catch((err: unknown) => {
          log('error', { event: 'internal_error', clientId: conn.clientId, error: (err as Error).message });
          reject(conn, ErrorCode.Internal, 'internal error');
        });
    });
    ws.on('pong', (data) => {
      conn.alive = true;
      account(conn, 'up', data.length);
    });
    ws.on('error', (err) => log('warn', { event: 'socket_error', clientId: conn.clientId, error: err.message }));
    ws.on('close', () => {
      connections.delete(conn);
      if (conn.helloTimer) clearTimeout(conn.helloTimer);
      const id = conn.clientId;
      if (id !== null && byClient.get(id) === conn) {
        byClient.delete(id);
        log('info', { event: 'client_left', clientId: id });
        events.emit('clientLeft', { clientId: id, reason: 'closed' });
      }
    });
  });

  const heartbeat = setInterval(() => {
    for (const conn of connections) {
      if (!conn.alive) {
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
      account(conn, 'down', 0);
    }
  }, limits.heartbeatMs);
  heartbeat.unref();

  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
    });
  } catch (err) {
    if (!options.store) await store.close();
    const code = (err as NodeJS.ErrnoException).code;
    const where = `${options.host ?? '127.0.0.1'}:${options.port ?? 0}`;
    throw new Error(code === 'EADDRINUSE' ? `port ${where} is already in use` : `cannot listen on ${where}: ${(err as Error).message}`, { cause: err });
  }
  const port = (http.address() as AddressInfo).port;
  const host = options.host ?? '127.0.0.1';
  const url = `${options.tls ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log('info', { event: 'listening', url, committedRound: state.round, k: config.k, sampling: config.sampling });

  return {
    url,
    port,
    events,
    store,
    stats: () => ({ committedRound: state.round, finished: finished(), connections: connections.size, clients: byClient.size, bytesUp, bytesDown }),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      if (open) clearTimeout(open.deadline);
      for (const conn of connections) conn.ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
      if (!options.store) await store.close();
      log('info', { event: 'closed', committedRound: state.round });
    },
  };
}
