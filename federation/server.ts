// The federation server's transport: WebSocket (ws, optionally over TLS), framing through protocol/,
// authentication, rate and connection limits, heartbeats and byte counts. What the frames mean for the
// federation (rounds, sampling, deadlines, aggregation, commits, catch-up) is the round engine's
// (round-engine.ts); this module feeds it and carries out what it sends.
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { ErrorCode, ProtocolError, decodeMessage, encodeMessage, type FederationConfig, type HelloMessage, type ServerMessage } from '../protocol';
import { clientIdProblem } from '../protocol/client-id';
import { wsFrameBytes } from '../protocol/wire-bytes';
import { Admission } from './admission';
import { systemClock, type Clock } from './clock';
import type { ServerEvents } from './events';
import { LevelFederationStore } from './level-store';
import { jsonLinesLogger, type LogRecord, type Logger } from './log';
import type { Pacing } from './pacing';
import { TokenBucket } from './rate-limit';
import type { Robustness } from './robust';
import { ForeignStoreError, RoundEngine, type Outbox } from './round-engine';
import type { FederationStore } from './store';
import { serveRevocationRequests, type RevocationOutcome } from './revocation-requests';
import { bindIdentity, revokeToken, tokenLive, verifyToken, watchTokenChanges } from './tokens';
import { errorMessage } from '../protocol/errors';

export interface ServerLimits {
  /** Largest accepted frame payload; larger ones get a TooLarge error (4× this closes at the ws layer). */
  readonly maxMessageBytes: number;
  /** WebSocket connections in all; beyond it the oldest silent one without a HELLO goes, else the new one is refused. */
  readonly maxConnections: number;
  readonly messagesPerSecond: number;
  readonly messageBurst: number;
  /** A socket that has not said HELLO by then (from its TCP accept) is closed (admission.ts). */
  readonly helloTimeoutMs: number;
  /** Sockets without an accepted HELLO, in all: the rest of maxConnections is only ever held by authenticated sessions. */
  readonly maxPending: number;
  /** Sockets without an accepted HELLO from one remote address; beyond it that address's oldest silent one is closed. */
  readonly maxPendingPerAddress: number;
  /** Ping interval; a peer that missed the previous pong is dropped. */
  readonly heartbeatMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxMessageBytes: 1 << 20,
  maxConnections: 10_000,
  messagesPerSecond: 20,
  messageBurst: 40,
  helloTimeoutMs: 10_000,
  // A tenth of the connections: an honest client holds a pending slot only for the milliseconds until its HELLO.
  maxPending: 1000,
  // Clients behind one NAT address connect one by one; a flood from one address ages out its own sockets.
  maxPendingPerAddress: 32,
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
  /** Accept a store whose integrity record is missing or disagrees, recording its content anew (level-store.ts). */
  readonly trustStore?: boolean;
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
  /** Bounds on one upload's |g| and example count (robust.ts). */
  readonly robustness?: Partial<Robustness>;
  /** Deadlines that follow the clients' pace (pacing.ts). */
  readonly pacing?: Partial<Pacing>;
  /** JSON-lines log destination. */
  readonly log?: Writable;
  /** The round engine's clock (deadlines, commit times); default the system's. */
  readonly clock?: Clock;
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
  /** The client this connection speaks for, once its hello was accepted. */
  clientId: string | null;
  /** The token its hello was verified with: a revocation closes the connection. */
  tokenId: string | null;
  alive: boolean;
  /** Its socket's key in the admission of sockets without a HELLO. */
  readonly admissionKey: string;
  /** hello is being verified (async): further frames wait for the verdict. */
  pendingHello: boolean;
  /** A fatal error was sent: nothing more from this peer is decoded, answered or logged. */
  dead: boolean;
  /** Log lines this connection may still cause (refilled over time); the rest are counted, not written. */
  readonly logBucket: TokenBucket;
  suppressed: number;
}

/** Log lines one connection may cause: a burst, then one a second; the rest are summed up at its close. */
const LOG_LINES_PER_SECOND = 1;
const LOG_LINES_BURST = 20;
/** How long a peer refused with a fatal error has to read its ERROR before its socket is destroyed. */
const FATAL_LINGER_MS = 1000;

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
  ErrorCode.IdentityMismatch,
]);

/**
 * The configuration as every client reads it from WELCOME: one a client would refuse (τ above what an
 * upload carries, K beyond the codec's) or read otherwise (rounds beyond a u32 field) is refused here,
 * before anything starts, by the codec clients use.
 */
export function checkWelcomeConfig(config: FederationConfig): void {
  let read: FederationConfig;
  try {
    const m = decodeMessage(encodeMessage({ type: 'welcome', config, committedRound: 0 }));
    if (m.type !== 'welcome') throw new Error('not a welcome');
    read = m.config;
  } catch (err) {
    throw new Error(`clients would refuse this federation's configuration: ${errorMessage(err)}`, { cause: err });
  }
  for (const [key, value] of Object.entries(config)) {
    const got = (read as unknown as Record<string, unknown>)[key];
    if (!isDeepStrictEqual(got, value))
      throw new Error(`the configuration's ${key} = ${String(value)} does not fit the protocol: clients would read ${String(got)}`);
  }
}

/** One TCP connection's key, the same for its TLS socket (which reports its remote address and port). */
const socketKey = (socket: Socket): string => `${socket.remoteAddress ?? ''}|${socket.remotePort ?? ''}`;

function rawToBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

export async function startServer(options: ServerOptions): Promise<FederationServer> {
  const config = options.config;
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const log: Logger = jsonLinesLogger(options.log);
  const events = new EventEmitter<ServerEvents>();
  const requireToken = options.requireToken ?? true;
  checkWelcomeConfig(config);

  if (!options.store && !options.storePath) throw new Error('startServer needs a storePath or a store');
  const store = options.store ?? (await LevelFederationStore.open(options.storePath as string, { trustContent: options.trustStore }));
  const outbox: Outbox<Connection> = {
    send,
    refuse: reject,
    displace(conn, message) {
      conn.clientId = null;
      reject(conn, ErrorCode.DuplicateClient, message);
    },
  };
  let engine: RoundEngine<Connection>;
  try {
    engine = await RoundEngine.open({
      config,
      store,
      clock: options.clock ?? systemClock,
      outbox,
      events,
      log,
      modelHash: options.modelHash,
      generatorVersion: options.generatorVersion,
      paramCount: options.paramCount,
      minClients: options.minClients,
      probabilityBits: options.probabilityBits,
      mantissaBits: options.mantissaBits,
      robustness: options.robustness,
      pacing: options.pacing,
    });
  } catch (err) {
    if (!(err instanceof ForeignStoreError)) throw err;
    await store.close();
    throw new Error(
      `the store at ${options.storePath ?? '(custom store)'} belongs to a federation with K = ${err.stored.k}, seed ${err.stored.federationSeed}`,
      { cause: err },
    );
  }

  const connections = new Set<Connection>();
  const admission = new Admission<string>(limits);
  /** Token-to-identity bindings, one after another. */
  let bindings: Promise<void> = Promise.resolve();
  let closed = false;
  let bytesUp = 0;
  let bytesDown = 0;

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
    engine.recordBytes(conn.clientId, direction, bytes, round);
  }

  function send(conn: Connection, m: ServerMessage, round?: number): void {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    const frame = encodeMessage(m);
    conn.ws.send(frame);
    account(conn, 'down', frame.length, round);
  }

  /** A log line caused by a connection, within its rate. */
  function connLog(conn: Connection, level: 'info' | 'warn' | 'error', fields: LogRecord): void {
    if (conn.logBucket.take()) log(level, fields);
    else conn.suppressed++;
  }

  function reject(conn: Connection, code: ErrorCode, message: string): void {
    if (conn.dead) return;
    connLog(conn, 'warn', { event: 'rejected', clientId: conn.clientId, code, message });
    events.emit('rejected', { clientId: conn.clientId, code, message });
    send(conn, { type: 'error', code, message });
    if (!FATAL.has(code)) return;
    // Torn down at once: no further frame of the peer is decoded, answered or logged; the socket goes
    // when the peer answers the close, or after a moment to read the ERROR if it does not.
    conn.dead = true;
    conn.ws.close(4000 + code, message.slice(0, 100));
    setTimeout(() => conn.ws.terminate(), FATAL_LINGER_MS).unref();
  }

  /** Authentication here; whether the client belongs to this federation is the engine's to say. */
  async function onHello(conn: Connection, m: HelloMessage): Promise<void> {
    admission.spoke(conn.admissionKey);
    // One rule for client ids everywhere (protocol/client-id.ts): none reaches a log or a terminal unless it is printable.
    const idProblem = clientIdProblem(m.clientId);
    if (idProblem !== null) return reject(conn, ErrorCode.Malformed, idProblem);
    let grants: { maxExamples?: number } = {};
    if (requireToken) {
      const tokenId = await verifyToken(store, m.token);
      if (tokenId === null) return reject(conn, ErrorCode.AuthFailed, 'the token is unknown or revoked');
      // Set before the reads below: a revocation from now on finds this connection (closeRevoked).
      conn.tokenId = tokenId;
      // One binding at a time: two tokens racing for one new identity cannot both take it.
      const binding = bindings.then(() => bindIdentity(store, tokenId, m.clientId));
      bindings = binding.then(
        () => undefined,
        () => undefined,
      );
      const mismatch = await binding;
      if (mismatch !== null) return reject(conn, ErrorCode.IdentityMismatch, mismatch);
      const record = await store.getToken(tokenId);
      // Revoked since it was verified (before this connection could be found by closeRevoked).
      if (!record || record.revokedAt !== undefined) return reject(conn, ErrorCode.AuthFailed, `token ${tokenId} was revoked`);
      if (record.maxExamples !== undefined) grants = { maxExamples: record.maxExamples };
    }
    const refusal = engine.admit(m);
    if (refusal) return reject(conn, refusal.code, refusal.message);
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    admission.settle(conn.admissionKey);
    conn.clientId = m.clientId;
    return engine.join(conn, m, grants);
  }

  /** Frames of one connection are handled one after another, in order. */
  function onFrame(conn: Connection, data: RawData, isBinary: boolean): Promise<void> {
    if (conn.dead) return Promise.resolve();
    const frame = rawToBytes(data);
    account(conn, 'up', frame.length);
    if (!conn.bucket.take()) return Promise.resolve(reject(conn, ErrorCode.RateLimited, `more than ${limits.messagesPerSecond} messages per second`));
    if (!isBinary) return Promise.resolve(reject(conn, ErrorCode.Malformed, 'text frames are not part of the protocol'));
    if (frame.length > limits.maxMessageBytes)
      return Promise.resolve(reject(conn, ErrorCode.TooLarge, `frame of ${frame.length} bytes exceeds ${limits.maxMessageBytes}`));
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
    if (m.type === 'upload') return engine.upload(conn, conn.clientId, m);
    if (m.type === 'error') {
      connLog(conn, 'warn', { event: 'client_reported_error', clientId: conn.clientId, code: m.code, message: m.message.slice(0, 200) });
      return Promise.resolve();
    }
    return Promise.resolve(reject(conn, ErrorCode.UnexpectedMessage, `${m.type} is a server message`));
  }

  http.on('connection', (socket: Socket) => {
    const key = socketKey(socket);
    admission.accept(key, socket.remoteAddress ?? 'unknown', () => socket.destroy());
    socket.once('close', () => admission.settle(key));
  });

  wss.on('connection', (ws, req) => {
    const admissionKey = socketKey(req.socket);
    // Closed meanwhile (its deadline, or a cap made room): nothing to serve.
    if (!admission.has(admissionKey)) return ws.terminate();
    const conn: Connection = {
      ws,
      bucket: new TokenBucket(limits.messagesPerSecond, limits.messageBurst),
      clientId: null,
      tokenId: null,
      alive: true,
      admissionKey,
      pendingHello: false,
      dead: false,
      logBucket: new TokenBucket(LOG_LINES_PER_SECOND, LOG_LINES_BURST),
      suppressed: 0,
    };
    connections.add(conn);
    admission.setClose(admissionKey, (because, message) => {
      // It no longer holds a slot, whenever its socket goes.
      connections.delete(conn);
      reject(conn, because === 'deadline' ? ErrorCode.HelloTimeout : ErrorCode.ServerFull, message);
    });
    // Full: the oldest silent connection makes room (this one, when it is the only one); with none, all
    // slots are authenticated sessions and this one is refused.
    if (
      connections.size > limits.maxConnections &&
      !admission.evictOldest(null, `the server holds its maximum of ${limits.maxConnections} connections: the oldest without a hello is closed`)
    ) {
      // Never counted: a refused connection must not hold a slot (it gets no close handler below).
      connections.delete(conn);
      reject(conn, ErrorCode.ServerFull, `the server holds its maximum of ${limits.maxConnections} connections`);
      return;
    }
    if (conn.dead) return;
    let queue = Promise.resolve();
    ws.on('message', (data, isBinary) => {
      if (conn.dead) return;
      queue = queue
        .then(() => onFrame(conn, data, isBinary))
        .catch((err: unknown) => {
          connLog(conn, 'error', { event: 'internal_error', clientId: conn.clientId, error: errorMessage(err) });
          reject(conn, ErrorCode.Internal, 'internal error');
        });
    });
    ws.on('pong', (data) => {
      conn.alive = true;
      account(conn, 'up', data.length);
    });
    ws.on('error', (err) => connLog(conn, 'warn', { event: 'socket_error', clientId: conn.clientId, error: err.message }));
    ws.on('close', () => {
      connections.delete(conn);
      if (conn.suppressed > 0) log('warn', { event: 'log_suppressed', clientId: conn.clientId, lines: conn.suppressed });
      admission.settle(conn.admissionKey);
      if (conn.clientId !== null) engine.leave(conn, conn.clientId);
    });
  });

  /**
   * Closes the connections admitted by `tokenId` (null: by any token) when it is revoked or gone; how many.
   * Checks run one after another, so a burst of changes reads each token once at a time.
   */
  let revocationChecks: Promise<number> = Promise.resolve(0);
  function closeRevoked(tokenId: string | null): Promise<number> {
    const check = revocationChecks.then(async () => {
      const ids = new Set<string>();
      for (const c of connections) if (c.tokenId !== null && !c.dead && (tokenId === null || c.tokenId === tokenId)) ids.add(c.tokenId);
      let closedNow = 0;
      for (const id of ids) {
        if (await tokenLive(store, id)) continue;
        for (const c of connections) {
          if (c.tokenId !== id || c.dead) continue;
          reject(c, ErrorCode.AuthFailed, `token ${id} was revoked`);
          closedNow++;
        }
      }
      if (closedNow > 0) log('info', { event: 'sessions_revoked', tokenId, sessions: closedNow });
      return closedNow;
    });
    revocationChecks = check.catch((err: unknown) => {
      log('warn', { event: 'revocation_check_failed', tokenId, error: errorMessage(err) });
      return 0;
    });
    return revocationChecks;
  }
  const unwatchTokens = watchTokenChanges(store, (tokenId) => {
    if (!closed) void closeRevoked(tokenId);
  });
  // An embedded store's folder is this process's alone: `fedkseed tokens revoke` asks through a request file.
  const revocationRequests = options.store
    ? null
    : serveRevocationRequests(
        options.storePath as string,
        async (tokenId): Promise<RevocationOutcome> => {
          const live = [...connections].filter((c) => c.tokenId === tokenId && !c.dead).length;
          const revoked = await revokeToken(store, tokenId);
          await closeRevoked(tokenId);
          return { revoked, sessionsClosed: revoked ? live : 0 };
        },
        log,
      );

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
    throw new Error(code === 'EADDRINUSE' ? `port ${where} is already in use` : `cannot listen on ${where}: ${errorMessage(err)}`, { cause: err });
  }
  const port = (http.address() as AddressInfo).port;
  const host = options.host ?? '127.0.0.1';
  const url = `${options.tls ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log('info', { event: 'listening', url, committedRound: engine.committedRound, k: config.k, sampling: config.sampling });

  return {
    url,
    port,
    events,
    store,
    stats: () => ({
      committedRound: engine.committedRound,
      finished: engine.finished,
      connections: connections.size,
      clients: engine.clients,
      bytesUp,
      bytesDown,
    }),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      unwatchTokens();
      revocationRequests?.stop();
      admission.clear();
      engine.close();
      for (const conn of connections) conn.ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
      if (!options.store) await store.close();
      log('info', { event: 'closed', committedRound: engine.committedRound });
    },
  };
}
