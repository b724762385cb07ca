// What leaves the server, for the round engine (its Outbox) and for the rest of the transport alike:
// frames encoded and sent, their bytes counted with the ws framing (the server's totals, and the
// engine's per-round counts), refusals with an ERROR that tear the connection down where the code is
// fatal, and the log lines a connection causes, within its rate.
import type { EventEmitter } from 'node:events';
import { ErrorCode, type ServerMessage } from '../../protocol';
import { encodeMessage } from '../../protocol/node/codec';
import { wsFrameBytes } from '../../protocol/wire-bytes';
import type { ServerEvents } from '../events';
import type { LogRecord, Logger } from '../log';
import type { Outbox, RoundEngine } from '../round-engine';
import type { Connection } from './connection';

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

/** Where a peer's frame bytes are counted besides the totals: the round engine, once it is open. */
type ByteMeter = Pick<RoundEngine<Connection>, 'recordBytes'>;

export class ConnectionOutbox implements Outbox<Connection> {
  private up = 0;
  private down = 0;
  private meter: ByteMeter | null = null;

  constructor(
    private readonly events: EventEmitter<ServerEvents>,
    private readonly log: Logger,
  ) {}

  /** The engine this outbox serves: it counts each frame's bytes toward its rounds from now on. */
  meterInto(engine: ByteMeter): void {
    this.meter = engine;
  }

  /** Frame bytes in each direction so far, ws framing included. */
  totals(): { readonly bytesUp: number; readonly bytesDown: number } {
    return { bytesUp: this.up, bytesDown: this.down };
  }

  /** A frame of `payload` bytes to or from `conn` (a ping or pong: 0 or its data): counted. */
  account(conn: Connection, direction: 'up' | 'down', payload: number, round?: number): void {
    const bytes = wsFrameBytes(payload, direction === 'up');
    if (direction === 'up') this.up += bytes;
    else this.down += bytes;
    this.meter?.recordBytes(conn.clientId, direction, bytes, round);
  }

  send(conn: Connection, m: ServerMessage, round?: number): void {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    const frame = encodeMessage(m);
    conn.ws.send(frame);
    this.account(conn, 'down', frame.length, round);
  }

  refuse(conn: Connection, code: ErrorCode, message: string): void {
    if (conn.dead) return;
    this.connLog(conn, 'warn', { event: 'rejected', clientId: conn.clientId, code, message });
    this.events.emit('rejected', { clientId: conn.clientId, code, message });
    this.send(conn, { type: 'error', code, message });
    if (!FATAL.has(code)) return;
    // Torn down at once: no further frame of the peer is decoded, answered or logged; the socket goes
    // when the peer answers the close, or after a moment to read the ERROR if it does not.
    conn.dead = true;
    conn.ws.close(4000 + code, message.slice(0, 100));
    setTimeout(() => conn.ws.terminate(), FATAL_LINGER_MS).unref();
  }

  displace(conn: Connection, message: string): void {
    conn.clientId = null;
    this.refuse(conn, ErrorCode.DuplicateClient, message);
  }

  /** A log line caused by a connection, within its rate. */
  connLog(conn: Connection, level: 'info' | 'warn' | 'error', fields: LogRecord): void {
    if (conn.logBucket.take()) this.log(level, fields);
    else conn.suppressed++;
  }
}
