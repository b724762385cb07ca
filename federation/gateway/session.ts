// One gateway's own PostgreSQL session, apart from the query pool: it holds the coordinator's advisory
// lock and LISTENs for commits, so it must be a single long-lived connection. When it drops (the
// database restarted, the network failed) the lock and the LISTEN are gone with it; it reconnects with
// backoff and says so, and its new backend pid becomes the gateway's identity for presence rows.
import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from '../log';
import { errorMessage } from '../../protocol/errors';

export interface SessionEvents {
  /** Connected (again): `pid` is the backend's process id. */
  up: [pid: number];
  /** The connection is gone, and with it the session's locks and LISTENs. */
  down: [];
  notification: [payload: string];
}

export const CHANNEL = 'fedkseed_changes';
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;

export class GatewaySession extends EventEmitter<SessionEvents> {
  private client: pg.Client | null = null;
  private closed = false;
  private retryMs = RETRY_MIN_MS;
  /** The backend pid of the live connection, or null while there is none. */
  pid: number | null = null;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly log: Logger,
    private readonly where: string,
  ) {
    super();
  }

  /** Connects once (throws when the database cannot be reached); later drops reconnect by themselves. */
  async start(): Promise<void> {
    await this.connect();
  }

  /** The live connection, or null while reconnecting. */
  get connection(): pg.Client | null {
    return this.client;
  }

  private async connect(): Promise<void> {
    // Named after the gateway's process, so pg_stat_activity and pg_locks show which one coordinates.
    const client = new pg.Client({ ...this.config, application_name: `fedkseed-gateway-${process.pid}` });
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    client.on('notification', (n) => this.emit('notification', n.payload ?? ''));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      if (this.closed) return void (await client.end().catch(() => undefined));
      this.client = client;
      this.pid = rows[0].pid;
      this.retryMs = RETRY_MIN_MS;
      this.emit('up', this.pid);
    } catch (err) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw err;
    }
  }

  private lost(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    this.pid = null;
    this.emit('down');
    if (!this.closed) this.reconnect();
  }

  private reconnect(): void {
    const delay = this.retryMs;
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
    setTimeout(() => {
      if (this.closed) return;
      this.connect().catch((err: unknown) => {
        this.log('warn', { event: 'store_session_retry', store: this.where, error: errorMessage(err) });
        this.reconnect();
      });
    }, delay).unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = null;
    this.pid = null;
    await client?.end().catch(() => undefined);
  }
}
