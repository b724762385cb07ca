// The federation client loop: connect, hello, sync, train, upload, repeat; reconnect with exponential
// backoff and resume from the last synced round. Messages are handled strictly one after another, so an
// assignment that arrives while a round is still training waits for it.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import {
  ErrorCode,
  ProtocolError,
  errorCodeName,
  probabilitiesFromLevels,
  toSparse,
  wsFrameBytes,
  type ClientBytes,
  type ClientMessage,
  type FederationConfig,
  type Message,
  type RoundAssignmentMessage,
  type SyncMessage,
  type UploadAckMessage,
  type RoundResultMessage,
} from '../../protocol';
import { decodeMessage, encodeMessage } from '../../protocol/node/codec';
import type { LocalTrainer, StepProgress } from './local-trainer';
import { errorMessage } from '../../protocol/errors';

export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  /** Consecutive failed connection attempts before run() gives up. */
  readonly maxAttempts: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 10_000, factor: 2, maxAttempts: 20 };

export interface FederationClientOptions {
  /** ws:// or wss:// address of the server. */
  readonly url: string;
  readonly clientId: string;
  readonly token: string;
  readonly trainer: LocalTrainer;
  /** Committed round the trainer's replica already holds (0: the base model). */
  readonly lastSyncedRound?: number;
  readonly backoff?: Partial<BackoffOptions>;
  /** For wss with a private CA or a self-signed certificate. */
  readonly tls?: { readonly ca?: string | Buffer; readonly rejectUnauthorized?: boolean };
}

export interface ClientEvents {
  connected: [{ attempt: number }];
  welcome: [{ config: FederationConfig; committedRound: number }];
  /**
   * A connection closed or could not be made. `error`/`errorCode`: the socket's error (e.g. "connect
   * ECONNREFUSED 127.0.0.1:1", 'ECONNREFUSED'), null when it closed cleanly; `welcomed`: whether this
   * connection got as far as a welcome; `attempt`: failed attempts in a row.
   */
  disconnected: [
    { code: number; reason: string; retryInMs: number | null; error: string | null; errorCode: string | null; welcomed: boolean; attempt: number },
  ];
  round: [{ round: number; steps: number; changedSeeds: number; probabilities: Float64Array | null }];
  synced: [{ round: number; digest: string }];
  step: [StepProgress];
  uploaded: [{ round: number; pairs: number; bytes: number }];
  ack: [UploadAckMessage];
  result: [RoundResultMessage];
  /**
   * A frame sent or received. `round`: the round the server counts it for (a client sampled in round r
   * has its frames counted from r's assignment until r's result, the result and a reconnect's hello
   * excluded, heartbeats included), else null (connection overhead).
   */
  bytes: [{ direction: 'up' | 'down'; bytes: number; round: number | null }];
  serverError: [{ code: number; name: string; message: string }];
  /**
   * The federation refused this replica's digest (the clients' quorum holds another), or holds fewer
   * rounds than it (a store restored from an older backup): the replica held `round` and was rebuilt from
   * the base model; the client rejoins from round 0 and the server's full C rebuilds it. A rebuilt
   * replica whose digest is refused again ends run() with DigestMismatch.
   */
  resync: [{ round: number; message: string }];
}

export interface ClientRunResult {
  readonly finalRound: number;
  readonly digest: string;
}

/** A refusal the client cannot fix by reconnecting. */
export class FederationClientError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(`${errorCodeName(code)}: ${message}`);
    this.name = 'FederationClientError';
  }
}

/** run() gave up reconnecting; `last` is the last attempt's close, as in the `disconnected` event. */
export class FederationGaveUpError extends Error {
  constructor(
    message: string,
    readonly last: Omit<ClientEvents['disconnected'][0], 'retryInMs'>,
  ) {
    super(message);
    this.name = 'FederationGaveUpError';
  }
}

/**
 * TLS errors that retrying cannot cure: the server's certificate is not trusted or does not name the
 * host. The client fails at once with the reason (a --ca option or another URL is the fix).
 */
const TLS_VERIFICATION_ERRORS = new Set<string>([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * Why a connection could not be made or was lost, in words, with the system's code:
 * "connection refused (ECONNREFUSED)", "the host name example.org does not resolve (ENOTFOUND)".
 */
export function describeConnectionError(url: string, error: string | null, errorCode: string | null): string | null {
  if (error === null && errorCode === null) return null;
  let host = '';
  try {
    host = new URL(url).hostname;
  } catch {
    // An address ws could not parse fails before any socket: its own message says why.
  }
  const code = errorCode ?? '';
  const words: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'the connection was reset',
    ETIMEDOUT: 'the connection timed out',
    EHOSTUNREACH: 'no route to the host',
    ENETUNREACH: 'the network is unreachable',
    EPIPE: 'the connection was closed while writing',
  };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') return `the host name ${host} does not resolve (${code})`;
  if (words[code]) return `${words[code]} (${code})`;
  if (TLS_VERIFICATION_ERRORS.has(code) || code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS')) return `TLS: ${error ?? code} (${code})`;
  return code && error && !error.includes(code) ? `${error} (${code})` : (error ?? code);
}

/** The server's certificate failed verification: not retried. */
export class FederationTlsError extends Error {
  constructor(
    message: string,
    readonly errorCode: string,
  ) {
    super(message);
    this.name = 'FederationTlsError';
  }
}

const FATAL_FOR_CLIENT = new Set<number>([
  ErrorCode.AuthFailed,
  ErrorCode.ModelMismatch,
  ErrorCode.GeneratorMismatch,
  ErrorCode.DuplicateClient,
  ErrorCode.IdentityMismatch,
  ErrorCode.UnsupportedVersion,
]);

export class FederationClient extends EventEmitter<ClientEvents> {
  private readonly backoff: BackoffOptions;
  private synced: number;
  private config: FederationConfig | null = null;
  private ws: WebSocket | null = null;
  private socket: Socket | null = null;
  private stopped = false;
  /** Ends the backoff sleep early (stop()). */
  private wake: (() => void) | null = null;
  private frameUp = 0;
  private frameDown = 0;
  private socketUpDone = 0;
  private socketDownDone = 0;
  /** The round whose frames the server counts for this client now (see the `bytes` event). */
  private openRound: number | null = null;
  /** The replica was rebuilt after a DigestMismatch and the federation has not yet agreed with it. */
  private rebuilt = false;

  constructor(private readonly options: FederationClientOptions) {
    super();
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.synced = options.lastSyncedRound ?? 0;
  }

  /** The committed round the replica holds. */
  get syncedRound(): number {
    return this.synced;
  }

  bytes(): ClientBytes {
    return {
      frameUp: this.frameUp,
      frameDown: this.frameDown,
      socketUp: this.socketUpDone + (this.socket?.bytesWritten ?? 0),
      socketDown: this.socketDownDone + (this.socket?.bytesRead ?? 0),
    };
  }

  /** Runs until the federation has finished and the replica holds its final state. */
  async run(): Promise<ClientRunResult> {
    let failures = 0;
    for (;;) {
      if (this.stopped) throw new Error('the federation client was stopped');
      const outcome = await this.session(failures);
      if (outcome.kind === 'finished') return { finalRound: this.synced, digest: outcome.digest };
      if (outcome.kind === 'fatal') throw outcome.error;
      if (this.stopped) throw new Error('the federation client was stopped');
      if (outcome.kind === 'resync') {
        failures = 0;
        continue; // rejoin at once, from round 0
      }
      if (outcome.errorCode !== null && TLS_VERIFICATION_ERRORS.has(outcome.errorCode)) {
        throw new FederationTlsError(
          `the server's TLS certificate at ${this.options.url} failed verification (${outcome.errorCode}: ${outcome.error ?? 'untrusted'}); trust its certificate authority (fedkseed client --ca <file>) or use another URL`,
          outcome.errorCode,
        );
      }
      failures = outcome.welcomed ? 0 : failures + 1;
      const closed = {
        code: outcome.code,
        reason: outcome.reason,
        error: outcome.error,
        errorCode: outcome.errorCode,
        welcomed: outcome.welcomed,
        attempt: failures,
      };
      if (failures >= this.backoff.maxAttempts) {
        const why = describeConnectionError(this.options.url, outcome.error, outcome.errorCode) ?? (outcome.reason || `close code ${outcome.code}`);
        throw new FederationGaveUpError(`gave up after ${failures} failed connection attempts to ${this.options.url} (last: ${why})`, closed);
      }
      const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * this.backoff.factor ** failures) * (0.75 + Math.random() * 0.5);
      this.emit('disconnected', { ...closed, retryInMs: Math.round(delay) });
      if (this.stopped) throw new Error('the federation client was stopped');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /** Closes the connection and ends run() (rejecting) without waiting for a reconnect delay. */
  stop(): void {
    this.stopped = true;
    this.ws?.close(1000, 'client stopped');
    this.wake?.();
  }

  private send(ws: WebSocket, m: ClientMessage): number {
    const frame = encodeMessage(m);
    ws.send(frame);
    const bytes = wsFrameBytes(frame.length, true);
    this.frameUp += bytes;
    // The server reads a hello before it knows the client: never counted for a round.
    this.emit('bytes', { direction: 'up', bytes, round: m.type === 'hello' ? null : this.openRound });
    return bytes;
  }

  /** The round a received message is counted for, opening and closing the counted span. */
  private roundOf(m: Message): number | null {
    if (m.type === 'round') return (this.openRound = m.round);
    if (m.type === 'result') {
      if (this.openRound === m.round) this.openRound = null;
      return null;
    }
    return this.openRound;
  }

  /** One connection, from open to close. */
  private session(
    attempt: number,
  ): Promise<
    | { kind: 'finished'; digest: string }
    | { kind: 'resync' }
    | { kind: 'fatal'; error: Error }
    | { kind: 'closed'; code: number; reason: string; welcomed: boolean; error: string | null; errorCode: string | null }
  > {
    return new Promise((resolve) => {
      const ws = new WebSocket(this.options.url, {
        perMessageDeflate: false,
        ca: this.options.tls?.ca,
        rejectUnauthorized: this.options.tls?.rejectUnauthorized,
      });
      ws.binaryType = 'nodebuffer';
      this.ws = ws;
      let welcomed = false;
      let settled: { kind: 'finished'; digest: string } | { kind: 'resync' } | { kind: 'fatal'; error: Error } | null = null;
      let queue = Promise.resolve();

      ws.on('upgrade', (res) => {
        this.socket = res.socket as Socket;
      });
      ws.on('open', () => {
        this.emit('connected', { attempt });
        this.send(ws, {
          type: 'hello',
          clientId: this.options.clientId,
          token: this.options.token,
          modelHash: this.options.trainer.modelHash,
          lastSyncedRound: this.synced,
          generatorVersion: this.options.trainer.generatorVersion,
        });
      });
      ws.on('ping', (data) => {
        // ws answers with a pong at once; the server counts both for an open round.
        const down = wsFrameBytes(data.length, false);
        const up = wsFrameBytes(data.length, true);
        this.frameDown += down;
        this.frameUp += up;
        this.emit('bytes', { direction: 'down', bytes: down, round: this.openRound });
        this.emit('bytes', { direction: 'up', bytes: up, round: this.openRound });
      });
      ws.on('message', (data: Buffer) => {
        const bytes = wsFrameBytes(data.length, false);
        this.frameDown += bytes;
        queue = queue
          .then(async () => {
            let m: Message | null = null;
            try {
              m = decodeMessage(data, { k: this.config?.k });
            } finally {
              // In order with the messages before it, so a round's assignment opens its span first.
              this.emit('bytes', { direction: 'down', bytes, round: m ? this.roundOf(m) : this.openRound });
            }
            if (settled) return;
            const outcome = await this.handle(ws, m);
            if (m.type === 'welcome') welcomed = true;
            if (outcome) {
              settled = outcome;
              ws.close(1000, outcome.kind);
            }
          })
          .catch((err: unknown) => {
            const code = err instanceof ProtocolError ? err.code : ErrorCode.Internal;
            if (ws.readyState === ws.OPEN && !(err instanceof FederationClientError)) this.send(ws, { type: 'error', code, message: errorMessage(err) });
            // A refusal, or a failure of the local trainer (which a reconnect would only repeat, at once
            // and forever, since the welcome resets the backoff), ends run(); protocol errors reconnect.
            if (err instanceof FederationClientError) settled = { kind: 'fatal', error: err };
            else if (!(err instanceof ProtocolError))
              settled = { kind: 'fatal', error: new Error(`local training failed: ${errorMessage(err)}`, { cause: err }) };
            ws.close(1000, 'client error');
          });
      });
      let socketError: string | null = null;
      let socketErrorCode: string | null = null;
      ws.on('error', (err: Error & { code?: unknown }) => {
        // 'close' follows and drives the reconnect; keep why, for when the client gives up.
        socketError = err.message;
        socketErrorCode = typeof err.code === 'string' ? err.code : null;
      });
      ws.on('close', (code, reason) => {
        if (this.socket) {
          this.socketUpDone += this.socket.bytesWritten;
          this.socketDownDone += this.socket.bytesRead;
          this.socket = null;
        }
        this.ws = null;
        void queue.then(() =>
          resolve(settled ?? { kind: 'closed', code, reason: reason.toString(), welcomed, error: socketError, errorCode: socketErrorCode }),
        );
      });
    });
  }

  private async handle(ws: WebSocket, m: Message): Promise<{ kind: 'finished'; digest: string } | { kind: 'resync' } | null> {
    switch (m.type) {
      case 'welcome':
        this.config = m.config;
        this.emit('welcome', { config: m.config, committedRound: m.committedRound });
        return null;
      case 'round':
        await this.trainAssigned(ws, m);
        return null;
      case 'sync': {
        const digest = await this.applyChange(m);
        return m.finished ? { kind: 'finished', digest } : null;
      }
      case 'ack':
        // The federation agreed with the replica: a later disagreement may be resynced again.
        if (m.digest === 'match' || m.digest === 'reference') this.rebuilt = false;
        this.emit('ack', m);
        return null;
      case 'result':
        this.emit('result', m);
        return null;
      case 'error':
        this.emit('serverError', { code: m.code, name: errorCodeName(m.code), message: m.message });
        if (FATAL_FOR_CLIENT.has(m.code)) throw new FederationClientError(m.code, m.message);
        if (m.code === ErrorCode.DigestMismatch) return this.resync(m.message);
        // The server holds fewer rounds than the replica (restored from an older backup): the rounds after
        // its own are gone, and the replica is rebuilt to follow the federation from there.
        if (m.code === ErrorCode.StateAhead) return this.resync(m.message, false);
        return null;
      default:
        throw new ProtocolError(ErrorCode.UnexpectedMessage, `${m.type} is a client message`);
    }
  }

  /**
   * The replica's digest differs from the one the clients' quorum agreed on: rebuild it from the base
   * model (not incrementally: whatever went wrong may be in what it holds) and rejoin from round 0, so
   * the server's full C makes it the federation's replica again. A rebuilt replica that still disagrees
   * is not this replica's history but its base or arithmetic: the client stops. A server that holds fewer
   * rounds than the replica (StateAhead: its store restored from an older backup) is followed the same way.
   */
  private async resync(message: string, digestRefused = true): Promise<{ kind: 'resync' }> {
    if (this.rebuilt && digestRefused) {
      throw new FederationClientError(
        ErrorCode.DigestMismatch,
        `the replica rebuilt from the base model and the server's coefficients still differs from the one the other clients agree on (${message}); this client's base model or arithmetic differs from theirs, so it stops instead of training a different model`,
      );
    }
    const round = this.synced;
    this.emit('resync', { round, message });
    await this.options.trainer.rebuildReplica();
    this.rebuilt ||= digestRefused;
    this.synced = 0;
    this.openRound = null;
    this.emit('synced', { round: 0, digest: await this.options.trainer.digest() });
    return { kind: 'resync' };
  }

  private async applyChange(m: RoundAssignmentMessage | SyncMessage): Promise<string> {
    const config = this.requireConfig();
    const target = m.type === 'round' ? m.round - 1 : m.round;
    if (m.baseRound !== this.synced) {
      throw new ProtocolError(ErrorCode.WrongRound, `change from round ${m.baseRound}, the replica holds round ${this.synced}`);
    }
    const sparse = toSparse(m.delta);
    if (sparse.indices.length > 0) await this.options.trainer.applyCoefficientDelta(sparse, config);
    this.synced = target;
    const digest = await this.options.trainer.digest();
    this.emit('synced', { round: target, digest });
    return digest;
  }

  private async trainAssigned(ws: WebSocket, m: RoundAssignmentMessage): Promise<void> {
    const config = this.requireConfig();
    const digest = await this.applyChange(m);
    const probabilities = m.probabilities ? probabilitiesFromLevels(m.probabilities) : null;
    this.emit('round', { round: m.round, steps: m.steps, changedSeeds: m.delta.mantissas.filter((v) => v !== 0).length, probabilities });
    const result = await this.options.trainer.trainRound({ round: m.round, steps: m.steps, probabilities, config }, (p) => this.emit('step', p));
    if (ws.readyState !== ws.OPEN) return; // the round is lost with the connection; the server reassigns
    const bytes = this.send(ws, {
      type: 'upload',
      round: m.round,
      examples: result.examples,
      lossBeforeSum: result.lossBefore.sum,
      lossBeforeCount: result.lossBefore.count,
      lossAfterSum: result.lossAfter.sum,
      lossAfterCount: result.lossAfter.count,
      digestRound: m.round - 1,
      digest: Buffer.from(digest, 'hex'),
      pairs: result.pairs,
    });
    this.emit('uploaded', { round: m.round, pairs: result.pairs.length, bytes });
  }

  private requireConfig(): FederationConfig {
    if (!this.config) throw new ProtocolError(ErrorCode.UnexpectedMessage, 'a round arrived before welcome');
    return this.config;
  }
}
