// The tables of a federation in PostgreSQL: one federation per database at a time (the coordinator's
// advisory lock and the NOTIFY channel are the database's; another schema through the URL's search_path
// separates the tables, not these). Created at the first gateway's start, under an advisory lock so
// gateways starting together do not race on CREATE TABLE.
import type pg from 'pg';
import { LOCK_CLASS, SCHEMA_LOCK } from './leader';

const TABLES = `
CREATE TABLE IF NOT EXISTS fedkseed_config (id int PRIMARY KEY CHECK (id = 1), config jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS fedkseed_state (
  id int PRIMARY KEY CHECK (id = 1),
  round int NOT NULL,
  coefficients bytea NOT NULL, residual bytea NOT NULL, importance_sum bytea NOT NULL, importance_count bytea NOT NULL);
CREATE TABLE IF NOT EXISTS fedkseed_rounds (
  round int PRIMARY KEY,
  change bytea NOT NULL, participants text[] NOT NULL, examples double precision NOT NULL,
  loss_before double precision NOT NULL, loss_after double precision NOT NULL, committed_at text NOT NULL);
CREATE TABLE IF NOT EXISTS fedkseed_digests (round int PRIMARY KEY, digest text NOT NULL);
CREATE TABLE IF NOT EXISTS fedkseed_tokens (id text PRIMARY KEY, record jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS fedkseed_open_round (
  id int PRIMARY KEY CHECK (id = 1), round int NOT NULL, attempt int NOT NULL, assigned text[] NOT NULL, deadline_at bigint NOT NULL);
-- One upload per client and round: a retried upload (through any gateway) is kept once.
CREATE TABLE IF NOT EXISTS fedkseed_uploads (round int NOT NULL, client_id text NOT NULL, frame bytea NOT NULL, PRIMARY KEY (round, client_id));
-- Which gateway (the backend pid of its own session) each connected client is on.
CREATE TABLE IF NOT EXISTS fedkseed_presence (client_id text PRIMARY KEY, gateway int NOT NULL);
-- The hash chain over rounds and the state's checksums (record-chain.ts); null in rows written before them.
ALTER TABLE fedkseed_state ADD COLUMN IF NOT EXISTS seal bytea;
ALTER TABLE fedkseed_rounds ADD COLUMN IF NOT EXISTS after jsonb;
ALTER TABLE fedkseed_rounds ADD COLUMN IF NOT EXISTS link jsonb;
-- The server's sampling secret (sampling.ts): made once, shared by the gateways, never sent.
CREATE TABLE IF NOT EXISTS fedkseed_secret (id int PRIMARY KEY CHECK (id = 1), secret bytea NOT NULL);
`;

export async function ensureSchema(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  // A cut connection fails the query below; its 'error' event must not end the process.
  let broken = false;
  const cut = (): void => {
    broken = true;
  };
  client.on('error', cut);
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, SCHEMA_LOCK]);
    await client.query(TABLES);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.off('error', cut);
    client.release(broken);
  }
}
