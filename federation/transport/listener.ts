// The HTTP server the WebSocket server rides on (HTTPS when given a certificate and key file): built,
// listening (a busy port or another failure said plainly), its ws:// or wss:// URL, and closed. What
// the sockets carry is connections.ts's.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { errorMessage } from '../../protocol/errors';
import type { Logger } from '../log';

export interface ListenerOptions {
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
}

export class Listener {
  readonly http: HttpServer;
  readonly wss: WebSocketServer;

  /** `maxPayload`: the ws layer closes a connection whose frame exceeds it. */
  constructor(
    private readonly options: ListenerOptions,
    maxPayload: number,
    log: Logger,
  ) {
    const tls = options.tls;
    this.http = tls ? createHttpsServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }) : createHttpServer();
    this.wss = new WebSocketServer({ server: this.http, maxPayload, perMessageDeflate: false });
    // ws re-emits the HTTP server's errors; a listen failure is reported by listen() instead.
    this.wss.on('error', (err) => log('error', { event: 'server_error', error: err.message }));
  }

  /** Listens on the host and port: the port taken and the URL clients dial. */
  async listen(): Promise<{ readonly port: number; readonly url: string }> {
    const host = this.options.host ?? '127.0.0.1';
    try {
      await new Promise<void>((resolve, reject) => {
        this.http.once('error', reject);
        this.http.listen(this.options.port ?? 0, host, () => resolve());
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const where = `${host}:${this.options.port ?? 0}`;
      throw new Error(code === 'EADDRINUSE' ? `port ${where} is already in use` : `cannot listen on ${where}: ${errorMessage(err)}`, { cause: err });
    }
    const port = (this.http.address() as AddressInfo).port;
    const url = `${this.options.tls ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
    return { port, url };
  }

  /** Stops accepting; resolves once both servers are closed (connections are the caller's to end first). */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}
