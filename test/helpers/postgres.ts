// A real PostgreSQL server for tests, started and stopped by the test itself: initdb into a temporary
// folder, pg_ctl on a free loopback port (its socket in that folder too), password authentication for
// TCP. Debian's `postgresql` package provides the binaries (.ci/run installs it); a missing binary fails
// the test by name instead of skipping it. initdb and postgres refuse to run as root, so under uid 0
// they run as the `postgres` system user (which the package creates), owning the data folder.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';

export const PG_USER = 'fedkseed';

export interface TestPostgres {
  readonly port: number;
  /** The URL without its password (which PGPASSWORD or `password` gives). */
  readonly url: (database?: string) => string;
  readonly password: string;
  /** A new, empty database; its URL. */
  createDatabase(name: string): Promise<string>;
  /** pg_ctl stop -m fast (every session is cut), then start again on the same port and data. */
  restart(): void;
  stop(): void;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0)
    throw new Error(
      `PostgreSQL's server binaries (initdb, pg_ctl) are missing from ${root}: install the Debian package postgresql (apt-get install postgresql)`,
    );
  return join(root, versions[0], 'bin');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts a fresh server; call stop() when done (the folder goes with it). */
export async function startPostgres(): Promise<TestPostgres> {
  const bin = binDir();
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()) : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'fedk-pg-'));
  const data = join(dir, 'data');
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, password);
  if (owner !== undefined) {
    chownSync(dir, owner, -1);
    chownSync(pwfile, owner, -1);
  }
  chmodSync(dir, 0o700);
  const run = (tool: string, args: string[]): void => {
    const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
    execFileSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  };
  const port = await freePort();
  run('initdb', ['-D', data, '-U', PG_USER, `--pwfile=${pwfile}`, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C']);
  rmSync(pwfile);
  // Durability as in production (fsync on); a small server: tests open few sessions.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=60 -c shared_buffers=16MB`;
  const start = (): void => run('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-o', options, '-w', '-t', '30', 'start']);
  start();
  const url = (database = 'postgres'): string => `postgres://${PG_USER}@127.0.0.1:${port}/${database}`;
  let stopped = false;
  return {
    port,
    url,
    password,
    async createDatabase(name) {
      const client = new pg.Client({ ...parseIntoClientConfig(url()), password });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    restart() {
      run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
      start();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
