// fedkseed tokens and fedkseed server with --store postgres://…: tokens are issued, listed and revoked
// in a real PostgreSQL (password from a file or PGPASSWORD), and a URL that carries a password is
// refused without the password appearing in what the command prints.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startPostgres } from '../helpers/postgres';

const CLI = join(import.meta.dirname, '../../cli/main.ts');

function fedkseed(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, PGPASSWORD: '', ...env },
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('a store URL with a password is refused and the password is not printed', () => {
  const cases = [
    ['server', '--store', 'postgres://fed:s3cret-pw@127.0.0.1:1/db', '--no-auth'],
    ['tokens', 'list', '--store', 'postgres://fed@127.0.0.1:1/db?password=s3cret-pw'],
  ];
  for (const args of cases) {
    const r = fedkseed(args);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /carries a password/);
    assert.doesNotMatch(r.stdout + r.stderr, /s3cret-pw/);
  }
});

test('tokens are issued, listed and revoked in a PostgreSQL store', { timeout: 90_000 }, async () => {
  const pg = await startPostgres();
  const dir = mkdtempSync(join(tmpdir(), 'fedk-cli-pg-'));
  try {
    const url = await pg.createDatabase('tokens');
    const passwordFile = join(dir, 'pw');
    writeFileSync(passwordFile, `${pg.password}\n`);
    const created = fedkseed(['tokens', 'create', '--store', url, '--store-password-file', passwordFile, '--label', 'alice', '--json']);
    assert.equal(created.status, 0, created.stderr);
    const { id, token } = JSON.parse(created.stdout) as { id: string; token: string };
    assert.match(token, /^fks_[0-9a-f]{16}_/);
    const listed = fedkseed(['tokens', 'list', '--store', url, '--json'], { PGPASSWORD: pg.password });
    assert.equal(listed.status, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { tokens: { id: string; label: string }[] }).tokens.map((t) => [t.id, t.label]),
      [[id, 'alice']],
    );
    assert.doesNotMatch(listed.stdout + listed.stderr, new RegExp(pg.password));
    assert.equal(fedkseed(['tokens', 'revoke', id, '--store', url], { PGPASSWORD: pg.password }).status, 0);
    const after = fedkseed(['tokens', 'list', '--store', url, '--json'], { PGPASSWORD: pg.password });
    // Kept, marked revoked: its client id (if any) stays reserved.
    assert.deepEqual(
      (JSON.parse(after.stdout) as { tokens: { id: string; revokedAt?: string }[] }).tokens.map((t) => [t.id, typeof t.revokedAt]),
      [[id, 'string']],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    pg.stop();
  }
});
