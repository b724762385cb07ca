// FederationStore on PostgreSQL: what several gateway processes share to serve one federation. A
// commit is one transaction that checks the round advances by exactly one (so a deposed coordinator
// cannot commit a round twice) and NOTIFYs the other gateways; uploads are keyed by (round, client), so a
// retried one counts once; the coordinator is elected with an advisory lock on the gateway's own session
// (gateway/leader.ts), and changes reach every gateway by LISTEN/NOTIFY with a polling bound
// (gateway/notify.ts). Credentials come from PGPASSWORD, ~/.pgpass or `password`, never the URL.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import type { FederationConfig } from '../protocol';
import { ChangeFeed } from './gateway/notify';
import { COMMIT_LOCK, Leadership, LOCK_CLASS } from './gateway/leader';
import { ensureSchema } from './gateway/schema';
import { CHANNEL, GatewaySession } from './gateway/session';
import { redactStoreUrl, urlHasPassword } from './gateway/url';
import { checkedConfig, checkedToken, StoreDamagedError } from './level-store';
import type { Logger } from './log';
import { afterFromJson, afterToJson, decodeStateSeal, describeDamage, encodeStateSeal, linkFromJson, sealCommit, verifyChain } from './record-chain';
import { SAMPLING_SECRET_BYTES } from './sampling';
import {
  StaleRoundError,
  type FederationState,
  type FederationStore,
  type OpenRoundRecord,
  type RoundRecord,
  type TokenRecord,
  type UploadOutcome,
} from './store';
import { errorMessage } from '../protocol/errors';

export interface PgStoreOptions {
  /** The role's password; default PGPASSWORD or ~/.pgpass, as libpq does. */
  readonly password?: string;
  readonly log?: Logger;
  /** Longest a gateway goes without reading the store again when notifications are lost. Default 1000. */
  readonly pollMs?: number;
  /** How often a gateway that is not the coordinator tries the coordinator's lock. Default 500. */
  readonly electMs?: number;
  /** Pooled connections for queries (the session is one more). Default 4. */
  readonly poolSize?: number;
}

/** The NOTIFY payload prefix of a token change: `token <id>`. */
const TOKEN_NOTICE = 'token ';

const f64 = (v: Float64Array): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

function toF64(b: unknown, what: string, k?: number): Float64Array {
  if (!Buffer.isBuffer(b) || b.length % 8 !== 0 || (k !== undefined && b.length !== 8 * k))
    throw new Error(`the store's ${what} is not ${k ?? 'a whole number of'} float64 values`);
  const out = new Float64Array(b.length / 8);
  Buffer.from(out.buffer).set(b);
  return out;
}

interface StateRow {
  round: number;
  coefficients: Buffer;
  residual: Buffer;
  importance_sum: Buffer;
  importance_count: Buffer;
  seal: Buffer | null;
}

interface RoundRow {
  round: number;
  change: Buffer;
  participants: string[];
  examples: number;
  loss_before: number;
  loss_after: number;
  committed_at: string;
  after: unknown;
  link: unknown;
}

const SELECT_STATE = 'SELECT round, coefficients, residual, importance_sum, importance_count, seal FROM fedkseed_state';
const SELECT_ROUND = 'SELECT round, change, participants, examples, loss_before, loss_after, committed_at, after, link FROM fedkseed_rounds';

function stateOf(rows: StateRow[]): FederationState | null {
  if (rows.length === 0) return null;
  const r = rows[0];
  const coefficients = toF64(r.coefficients, 'coefficients');
  const k = coefficients.length;
  const state = {
    round: r.round,
    coefficients,
    residual: toF64(r.residual, 'residual', k),
    importanceSum: toF64(r.importance_sum, 'importance sums', k),
    importanceCount: toF64(r.importance_count, 'importance counts', k),
  };
  return r.seal === null ? state : { ...state, seal: decodeStateSeal(r.seal) };
}

function roundOf(rows: RoundRow[], round: number): RoundRecord | null {
  if (rows.length === 0) return null;
  const r = rows[0];
  const change = toF64(r.change, `round ${round}'s change`);
  const record: RoundRecord = {
    round: r.round,
    change,
    participants: r.participants,
    examples: r.examples,
    lossBefore: r.loss_before,
    lossAfter: r.loss_after,
    committedAt: r.committed_at,
  };
  const link = linkFromJson(r.link, round);
  return { ...record, ...(r.after === null ? {} : { after: afterFromJson(r.after, change.length, round) }), ...(link ? { link } : {}) };
}

export class PgFederationStore implements FederationStore {
  /** Clients connected to this gateway: written again under the session's new pid after a reconnect. */
  private readonly present = new Set<string>();

  private constructor(
    private readonly pool: pg.Pool,
    private readonly session: GatewaySession,
    private readonly leadership: Leadership,
    private readonly feed: ChangeFeed,
    /** The URL without credentials, for messages. */
    readonly where: string,
  ) {
    session.on('up', (pid) => void this.claimPresence(pid).catch(() => undefined));
  }

  /** Connects, creates the tables when missing, and starts the session (election, notifications). */
  static async open(url: string, options: PgStoreOptions = {}): Promise<PgFederationStore> {
    const where = redactStoreUrl(url);
    if (urlHasPassword(url))
      throw new Error(
        `cannot open the store ${where}: its URL carries a password; put it in PGPASSWORD or a password file instead, where command lines and logs do not show it`,
      );
    const log: Logger = options.log ?? (() => {});
    // Parsed here, not passed as connectionString, which would override a password given apart from it.
    // A URL without a password parses to an empty one: dropped, so PGPASSWORD or ~/.pgpass apply.
    const { password: _inUrl, ...parsed } = parseIntoClientConfig(url);
    const config: pg.ClientConfig = { ...parsed, ...(options.password === undefined ? {} : { password: options.password }), connectionTimeoutMillis: 10_000 };
    const pool = new pg.Pool({ ...config, max: options.poolSize ?? 4 });
    // An idle pooled connection cut by a database restart: the pool replaces it at the next query.
    pool.on('error', (err) => log('warn', { event: 'store_connection_lost', store: where, error: err.message }));
    const session = new GatewaySession(config, log, where);
    try {
      await ensureSchema(pool);
      await session.start();
    } catch (err) {
      await session.close();
      await pool.end().catch(() => undefined);
      throw new Error(`cannot open the store ${where}: ${errorMessage(err)}`, { cause: err });
    }
    const feed = new ChangeFeed(session, options.pollMs ?? 1000);
    const leadership = new Leadership(session, () => feed.fire(), options.electMs ?? 500);
    const store = new PgFederationStore(pool, session, leadership, feed, where);
    // Every committed record is checked against the chain before the gateway serves, with commits held
    // off meanwhile: other gateways may be committing, and the check reads the state and rounds apart.
    const chain = await store
      .withCommitsHeld(() => verifyChain(store))
      .catch(async (err: unknown) => {
        await store.close();
        throw err;
      });
    if (chain.damage.length > 0) {
      await store.close();
      throw new StoreDamagedError(
        `the store ${where} is damaged: ${describeDamage(chain)}; restore a backup into an empty database (fedkseed server restore), nothing was changed`,
      );
    }
    if (session.pid !== null) await store.claimPresence(session.pid);
    return store;
  }

  get coordinator(): boolean {
    return this.leadership.coordinator;
  }

  watch(listener: () => void): void {
    this.feed.on(listener);
  }

  async loadConfig(): Promise<FederationConfig | null> {
    const { rows } = await this.pool.query<{ config: unknown }>('SELECT config FROM fedkseed_config WHERE id = 1');
    return rows.length === 0 ? null : checkedConfig(rows[0].config);
  }

  async saveConfig(config: FederationConfig): Promise<void> {
    // Gateways starting together may all save it: the first one stays.
    await this.pool.query('INSERT INTO fedkseed_config (id, config) VALUES (1, $1) ON CONFLICT (id) DO NOTHING', [JSON.stringify(config)]);
  }

  async committedRound(): Promise<number> {
    const { rows } = await this.pool.query<{ round: number }>('SELECT round FROM fedkseed_state WHERE id = 1');
    return rows[0]?.round ?? 0;
  }

  async loadState(): Promise<FederationState | null> {
    return stateOf((await this.pool.query<StateRow>(`${SELECT_STATE} WHERE id = 1`)).rows);
  }

  async commitRound(state: FederationState, record: RoundRecord): Promise<void> {
    await this.transaction(async (c) => {
      // Commits one at a time, whoever believes it coordinates; the round must advance by exactly one.
      await c.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, COMMIT_LOCK]);
      const prev = stateOf((await c.query<StateRow>(`${SELECT_STATE} WHERE id = 1`)).rows);
      const stored = prev?.round ?? 0;
      if (state.round !== stored + 1 || record.round !== state.round) throw new StaleRoundError(state.round, stored);
      const sealed = await sealCommit(prev, state, record, async (r) => roundOf((await c.query<RoundRow>(`${SELECT_ROUND} WHERE round = $1`, [r])).rows, r));
      const s = sealed.state;
      await c.query(
        `INSERT INTO fedkseed_state (id, round, coefficients, residual, importance_sum, importance_count, seal) VALUES (1, $1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET round = $1, coefficients = $2, residual = $3, importance_sum = $4, importance_count = $5, seal = $6`,
        [s.round, f64(s.coefficients), f64(s.residual), f64(s.importanceSum), f64(s.importanceCount), s.seal ? encodeStateSeal(s.seal) : null],
      );
      const r = sealed.record;
      await c.query(
        'INSERT INTO fedkseed_rounds (round, change, participants, examples, loss_before, loss_after, committed_at, after, link) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
        [
          r.round,
          f64(r.change),
          r.participants,
          r.examples,
          r.lossBefore,
          r.lossAfter,
          r.committedAt,
          r.after ? JSON.stringify(afterToJson(r.after)) : null,
          r.link ? JSON.stringify(r.link) : null,
        ],
      );
      await c.query('DELETE FROM fedkseed_uploads WHERE round <= $1', [record.round]);
      await c.query('DELETE FROM fedkseed_open_round WHERE round <= $1', [record.round]);
      await c.query('SELECT pg_notify($1, $2)', [CHANNEL, `committed ${record.round}`]);
    });
  }

  async loadRound(round: number): Promise<RoundRecord | null> {
    return roundOf((await this.pool.query<RoundRow>(`${SELECT_ROUND} WHERE round = $1`, [round])).rows, round);
  }

  async loadSecret(): Promise<Uint8Array> {
    // The first gateway to ask makes it; every other one reads the same.
    await this.pool.query('INSERT INTO fedkseed_secret (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING', [randomBytes(SAMPLING_SECRET_BYTES)]);
    const { rows } = await this.pool.query<{ secret: Buffer }>('SELECT secret FROM fedkseed_secret WHERE id = 1');
    const secret = rows[0]?.secret;
    if (!secret || secret.length !== SAMPLING_SECRET_BYTES)
      throw new Error(`the store's sampling secret is ${secret?.length ?? 0} bytes, expected ${SAMPLING_SECRET_BYTES}`);
    return new Uint8Array(secret);
  }

  async loadDigest(round: number): Promise<string | null> {
    const { rows } = await this.pool.query<{ digest: string }>('SELECT digest FROM fedkseed_digests WHERE round = $1', [round]);
    return rows[0]?.digest ?? null;
  }

  async saveDigest(round: number, digest: string): Promise<void> {
    // The first reference decided (on any gateway) stays.
    await this.pool.query('INSERT INTO fedkseed_digests (round, digest) VALUES ($1, $2) ON CONFLICT (round) DO NOTHING', [round, digest]);
  }

  async putToken(token: TokenRecord): Promise<void> {
    // Every gateway hears of the change (a revocation closes the sessions the token admitted there).
    await this.transaction(async (c) => {
      await c.query('INSERT INTO fedkseed_tokens (id, record) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET record = $2', [token.id, JSON.stringify(token)]);
      await c.query('SELECT pg_notify($1, $2)', [CHANNEL, `${TOKEN_NOTICE}${token.id}`]);
    });
  }

  async getToken(id: string): Promise<TokenRecord | null> {
    const { rows } = await this.pool.query<{ record: unknown }>('SELECT record FROM fedkseed_tokens WHERE id = $1', [id]);
    return rows.length === 0 ? null : checkedToken(rows[0].record);
  }

  async deleteToken(id: string): Promise<boolean> {
    const { rows } = await this.pool.query<{ n: string }>(
      'WITH gone AS (DELETE FROM fedkseed_tokens WHERE id = $1 RETURNING 1) SELECT (SELECT count(*) FROM gone) AS n, pg_notify($2, $3)',
      [id, CHANNEL, `${TOKEN_NOTICE}${id}`],
    );
    return Number(rows[0]?.n ?? 0) > 0;
  }

  /** Token changes of any gateway or `fedkseed tokens`, by NOTIFY; after the session reconnects, all of them may have changed. */
  watchTokens(listener: (tokenId: string | null) => void): void {
    this.session.on('notification', (payload) => {
      if (payload.startsWith(TOKEN_NOTICE)) listener(payload.slice(TOKEN_NOTICE.length));
    });
    this.session.on('up', () => listener(null));
  }

  async listTokens(): Promise<TokenRecord[]> {
    const { rows } = await this.pool.query<{ record: unknown }>('SELECT record FROM fedkseed_tokens ORDER BY id');
    return rows.map((r) => checkedToken(r.record));
  }

  async saveOpenRound(open: OpenRoundRecord): Promise<void> {
    await this.transaction(async (c) => {
      await c.query(
        `INSERT INTO fedkseed_open_round (id, round, attempt, assigned, deadline_at) VALUES (1, $1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET round = $1, attempt = $2, assigned = $3, deadline_at = $4`,
        [open.round, open.attempt, [...open.assigned], Math.round(open.deadlineAt)],
      );
      // A new attempt of a round starts without the uploads of the one before.
      await c.query('DELETE FROM fedkseed_uploads WHERE round = $1', [open.round]);
      await c.query('SELECT pg_notify($1, $2)', [CHANNEL, `opened ${open.round}`]);
    });
  }

  async loadOpenRound(): Promise<OpenRoundRecord | null> {
    const { rows } = await this.pool.query<{ round: number; attempt: number; assigned: string[]; deadline_at: string }>(
      'SELECT round, attempt, assigned, deadline_at FROM fedkseed_open_round WHERE id = 1',
    );
    if (rows.length === 0) return null;
    const r = rows[0];
    return { round: r.round, attempt: r.attempt, assigned: r.assigned, deadlineAt: Number(r.deadline_at) };
  }

  async putUpload(round: number, clientId: string, frame: Uint8Array): Promise<UploadOutcome> {
    // Only into the open round: an upload that arrives after its round's commit (which drops the open
    // round's record) is not kept where no commit would ever clear it.
    const { rows } = await this.pool.query<{ kept: string; open: boolean }>(
      `WITH kept AS (
         INSERT INTO fedkseed_uploads (round, client_id, frame)
         SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM fedkseed_open_round WHERE round = $1)
         ON CONFLICT (round, client_id) DO NOTHING RETURNING 1)
       SELECT (SELECT count(*) FROM kept) AS kept, EXISTS (SELECT 1 FROM fedkseed_open_round WHERE round = $1) AS open, pg_notify($4, $5)`,
      [round, clientId, Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength), CHANNEL, `uploaded ${round}`],
    );
    return Number(rows[0].kept) > 0 ? 'kept' : rows[0].open ? 'duplicate' : 'closed';
  }

  async uploadCount(round: number): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM fedkseed_uploads WHERE round = $1', [round]);
    return Number(rows[0].n);
  }

  async loadUploads(round: number): Promise<Map<string, Uint8Array>> {
    const { rows } = await this.pool.query<{ client_id: string; frame: Buffer }>('SELECT client_id, frame FROM fedkseed_uploads WHERE round = $1', [round]);
    return new Map(rows.map((r) => [r.client_id, new Uint8Array(r.frame)]));
  }

  async setPresent(clientId: string, present: boolean): Promise<void> {
    if (present) this.present.add(clientId);
    else this.present.delete(clientId);
    const pid = this.session.pid;
    if (pid === null) return; // written when the session is back
    if (present)
      await this.pool.query('INSERT INTO fedkseed_presence (client_id, gateway) VALUES ($1, $2) ON CONFLICT (client_id) DO UPDATE SET gateway = $2', [
        clientId,
        pid,
      ]);
    else await this.pool.query('DELETE FROM fedkseed_presence WHERE client_id = $1 AND gateway = $2', [clientId, pid]);
  }

  async listPresent(): Promise<string[]> {
    // A gateway that died (its session gone) no longer counts, whatever rows it left.
    const { rows } = await this.pool.query<{ client_id: string }>(
      'SELECT client_id FROM fedkseed_presence WHERE gateway IN (SELECT pid FROM pg_stat_activity) ORDER BY client_id',
    );
    return rows.map((r) => r.client_id);
  }

  private async claimPresence(pid: number): Promise<void> {
    // Rows of gateways whose sessions are gone (killed, or from before a database restart) go.
    await this.pool.query('DELETE FROM fedkseed_presence WHERE gateway NOT IN (SELECT pid FROM pg_stat_activity)');
    const ids = [...this.present];
    if (ids.length === 0) return;
    await this.pool.query(
      'INSERT INTO fedkseed_presence (client_id, gateway) SELECT unnest($1::text[]), $2 ON CONFLICT (client_id) DO UPDATE SET gateway = $2',
      [ids, pid],
    );
  }

  /** Runs `body` while no commit can land (the commit lock, held on a connection of its own). */
  private withCommitsHeld<T>(body: () => Promise<T>): Promise<T> {
    // The connection sits idle while `body` reads through the pool.
    return this.withConnection(async (c, markBroken) => {
      await c.query('SELECT pg_advisory_lock($1, $2)', [LOCK_CLASS, COMMIT_LOCK]);
      try {
        return await body();
      } finally {
        await c.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_CLASS, COMMIT_LOCK]).catch(markBroken);
      }
    });
  }

  private transaction(body: (c: pg.PoolClient) => Promise<void>): Promise<void> {
    return this.withConnection(async (c, markBroken) => {
      try {
        await c.query('BEGIN');
        await body(c);
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(markBroken);
        throw err;
      }
    });
  }

  /**
   * A connection checked out of the pool for `body`. One cut by a database restart meanwhile emits 'error'
   * (besides failing its query); the pool listens only to idle connections, so without a listener here
   * the process would end. A cut or failed connection is destroyed on release, not reused.
   */
  private async withConnection<T>(body: (c: pg.PoolClient, markBroken: () => void) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    let broken = false;
    const markBroken = (): void => {
      broken = true;
    };
    c.on('error', markBroken);
    try {
      return await body(c, markBroken);
    } finally {
      c.off('error', markBroken);
      c.release(broken);
    }
  }

  async close(): Promise<void> {
    this.feed.stop();
    this.leadership.stop();
    await this.session.close();
    await this.pool.end();
  }
}
