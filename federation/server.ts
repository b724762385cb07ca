// The federation server: startServer composes the store, the round engine (round-engine.ts, which
// decides what the frames mean for the federation: rounds, sampling, deadlines, aggregation, commits,
// catch-up) and its WebSocket transport in transport/: the outbox it sends through and counts bytes in
// (outbox.ts), the live connections with their admission, heartbeat and per-socket sessions — framing,
// rate and size limits, HELLO authentication (connections.ts, session.ts, auth.ts) — the revocation
// that ends live sessions (revocation.ts) and the HTTP(S) listener (listener.ts).
import { EventEmitter } from 'node:events';
import type { Writable } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import { type FederationConfig } from '../protocol';
import { decodeMessage, encodeMessage } from '../protocol/node/codec';
import { systemClock, type Clock } from './clock';
import type { ServerEvents } from './events';
import { LevelFederationStore } from './level-store';
import { jsonLinesLogger, type Logger } from './log';
import type { Pacing } from './pacing';
import type { Robustness } from './robust';
import { ForeignStoreError, RoundEngine } from './round-engine';
import type { FederationStore } from './store';
import { TokenAuth } from './transport/auth';
import type { Connection } from './transport/connection';
import { Connections } from './transport/connections';
import { DEFAULT_LIMITS, type ServerLimits } from './transport/limits';
import { Listener } from './transport/listener';
import { ConnectionOutbox } from './transport/outbox';
import { watchRevocations } from './transport/revocation';
import { errorMessage } from '../protocol/errors';

export { DEFAULT_LIMITS, type ServerLimits } from './transport/limits';

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

/** The embedded store at `storePath`, or the store given. */
async function openStore(options: ServerOptions): Promise<FederationStore> {
  if (!options.store && !options.storePath) throw new Error('startServer needs a storePath or a store');
  return options.store ?? (await LevelFederationStore.open(options.storePath as string, { trustContent: options.trustStore }));
}

/** The round engine over `store`; a store of another federation is closed and refused. */
async function openEngine(
  options: ServerOptions,
  store: FederationStore,
  outbox: ConnectionOutbox,
  events: EventEmitter<ServerEvents>,
  log: Logger,
): Promise<RoundEngine<Connection>> {
  const { config, modelHash, generatorVersion, paramCount, minClients, probabilityBits, mantissaBits, robustness, pacing } = options;
  try {
    const clock = options.clock ?? systemClock;
    const engine = await RoundEngine.open<Connection>({
      config,
      store,
      clock,
      outbox,
      events,
      log,
      modelHash,
      generatorVersion,
      paramCount,
      minClients,
      probabilityBits,
      mantissaBits,
      robustness,
      pacing,
    });
    outbox.meterInto(engine);
    return engine;
  } catch (err) {
    if (!(err instanceof ForeignStoreError)) throw err;
    await store.close();
    throw new Error(
      `the store at ${options.storePath ?? '(custom store)'} belongs to a federation with K = ${err.stored.k}, seed ${err.stored.federationSeed}`,
      { cause: err },
    );
  }
}

export async function startServer(options: ServerOptions): Promise<FederationServer> {
  const { config } = options;
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const log = jsonLinesLogger(options.log);
  const events = new EventEmitter<ServerEvents>();
  checkWelcomeConfig(config);
  const store = await openStore(options);
  const outbox = new ConnectionOutbox(events, log);
  const engine = await openEngine(options, store, outbox, events, log);
  const listener = new Listener(options, limits.maxMessageBytes * 4, log);
  const connections = new Connections({ k: config.k, limits, log, outbox, engine, auth: new TokenAuth(store, options.requireToken ?? true) });
  connections.attach(listener.http, listener.wss);
  const revocation = watchRevocations({ store, connections, outbox, log, requestsFrom: options.store ? null : (options.storePath as string) });
  const { port, url } = await listener.listen().catch(async (err: unknown) => {
    // Nothing was served yet: stop what the parts started so a failed start leaves no timers behind.
    revocation.stop();
    engine.close();
    connections.close();
    if (!options.store) await store.close();
    throw err;
  });
  log('info', { event: 'listening', url, committedRound: engine.committedRound, k: config.k, sampling: config.sampling });
  let closed = false;
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
      ...outbox.totals(),
    }),
    async close() {
      if (closed) return;
      closed = true;
      revocation.stop();
      engine.close();
      connections.close();
      await listener.close();
      if (!options.store) await store.close();
      log('info', { event: 'closed', committedRound: engine.committedRound });
    },
  };
}
