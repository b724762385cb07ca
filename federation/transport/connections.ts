// The live connections: each TCP socket enters the admission of sockets without a HELLO (admission.ts)
// at its accept, each WebSocket is held to the connection cap and has its events wired (frames in order
// to its session, pongs, socket errors, its close leaving the round engine), and a heartbeat drops the
// peers that missed their pong. Iterating yields the connections that hold a slot.
import type { Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import type { WebSocketServer } from 'ws';
import { ErrorCode } from '../../protocol';
import { errorMessage } from '../../protocol/errors';
import { Admission } from '../admission';
import type { Logger } from '../log';
import type { RoundEngine } from '../round-engine';
import type { TokenAuth } from './auth';
import { newConnection, socketKey, type Connection } from './connection';
import type { ServerLimits } from './limits';
import type { ConnectionOutbox } from './outbox';
import { Sessions } from './session';

export interface ConnectionParts {
  /** The federation's K: what a frame's seeds are checked against. */
  readonly k: number;
  readonly limits: ServerLimits;
  readonly log: Logger;
  readonly outbox: ConnectionOutbox;
  readonly engine: RoundEngine<Connection>;
  readonly auth: TokenAuth;
}

export class Connections implements Iterable<Connection> {
  private readonly live = new Set<Connection>();
  private readonly admission: Admission<string>;
  private readonly sessions: Sessions;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(private readonly parts: ConnectionParts) {
    this.admission = new Admission<string>(parts.limits);
    this.sessions = new Sessions({ ...parts, admission: this.admission });
  }

  get size(): number {
    return this.live.size;
  }

  [Symbol.iterator](): Iterator<Connection> {
    return this.live[Symbol.iterator]();
  }

  /** Serves the sockets `http` accepts and the WebSockets `wss` upgrades them to; the heartbeat starts. */
  attach(http: HttpServer, wss: WebSocketServer): void {
    http.on('connection', (socket: Socket) => {
      const key = socketKey(socket);
      this.admission.accept(key, socket.remoteAddress ?? 'unknown', () => socket.destroy());
      socket.once('close', () => this.admission.settle(key));
    });
    wss.on('connection', (ws, req) => this.serve(newConnection(ws, socketKey(req.socket), this.parts.limits)));
    this.heartbeat = setInterval(() => this.beat(), this.parts.limits.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Stops the heartbeat and the hello deadlines, and drops every connection at once. */
  close(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.admission.clear();
    for (const conn of this.live) conn.ws.terminate();
  }

  private serve(conn: Connection): void {
    const { limits, log, outbox, engine } = this.parts;
    const { ws, admissionKey } = conn;
    // Closed meanwhile (its deadline, or a cap made room): nothing to serve.
    if (!this.admission.has(admissionKey)) return ws.terminate();
    this.live.add(conn);
    this.admission.setClose(admissionKey, (because, message) => {
      // It no longer holds a slot, whenever its socket goes.
      this.live.delete(conn);
      outbox.refuse(conn, because === 'deadline' ? ErrorCode.HelloTimeout : ErrorCode.ServerFull, message);
    });
    // Full: the oldest silent connection makes room (this one, when it is the only one); with none, all
    // slots are authenticated sessions and this one is refused.
    if (
      this.live.size > limits.maxConnections &&
      !this.admission.evictOldest(null, `the server holds its maximum of ${limits.maxConnections} connections: the oldest without a hello is closed`)
    ) {
      // Never counted: a refused connection must not hold a slot (it gets no close handler below).
      this.live.delete(conn);
      outbox.refuse(conn, ErrorCode.ServerFull, `the server holds its maximum of ${limits.maxConnections} connections`);
      return;
    }
    if (conn.dead) return;
    let queue = Promise.resolve();
    ws.on('message', (data, isBinary) => {
      if (conn.dead) return;
      queue = queue
        .then(() => this.sessions.onFrame(conn, data, isBinary))
        .catch((err: unknown) => {
          outbox.connLog(conn, 'error', { event: 'internal_error', clientId: conn.clientId, error: errorMessage(err) });
          outbox.refuse(conn, ErrorCode.Internal, 'internal error');
        });
    });
    ws.on('pong', (data) => {
      conn.alive = true;
      outbox.account(conn, 'up', data.length);
    });
    ws.on('error', (err) => outbox.connLog(conn, 'warn', { event: 'socket_error', clientId: conn.clientId, error: err.message }));
    ws.on('close', () => {
      this.live.delete(conn);
      if (conn.suppressed > 0) log('warn', { event: 'log_suppressed', clientId: conn.clientId, lines: conn.suppressed });
      this.admission.settle(conn.admissionKey);
      if (conn.clientId !== null) engine.leave(conn, conn.clientId);
    });
  }

  /** Pings every connection; one that missed the previous pong is dropped. */
  private beat(): void {
    for (const conn of this.live) {
      if (!conn.alive) {
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
      this.parts.outbox.account(conn, 'down', 0);
    }
  }
}
