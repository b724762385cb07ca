// fedkseed server backup / restore on folder stores: a restore into a missing folder gives back the
// backed-up store; a store that holds a federation is replaced only with --force, one refused as
// damaged only with --repair, and either is moved aside, never deleted; a damaged backup is refused
// with nothing created; a server refused for a damaged store names the restore command. Backups carry an
// HMAC with a key kept beside the store folder (0600); a tampered backup or a failed restore leaves the
// target exactly as it was, with no half-made folder beside or inside it.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FederationConfig } from '../../protocol';
import { storeContentHash } from '../../federation/backup';
import { LevelFederationStore } from '../../federation/level-store';
import { startServer } from '../../federation/server';
import { FederationClient } from '../../federation/client/federation-client';
import { QuadraticToyTrainer } from '../../bench/toy-trainer';

const root = join(import.meta.dirname, '..', '..');

function cli(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'cli', 'main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const config: FederationConfig = {
  k: 32,
  federationSeed: 8,
  epsilon: 1e-3,
  eta: 0.05,
  tau: 3,
  batchSize: 1,
  sampling: 'uniform',
  weighting: 'examples',
  rounds: 3,
  clientsPerRound: 2,
  deadlineMs: 5000,
};

/** A finished three-round federation in `path`. */
async function federation(path: string): Promise<void> {
  const model = new QuadraticToyTrainer({ dimension: 8, clientSeed: 0 }).modelHash;
  const server = await startServer({ config, modelHash: model, generatorVersion: 1, paramCount: 8, storePath: path, requireToken: false });
  try {
    await Promise.all(
      [1, 2].map((i) =>
        new FederationClient({ url: server.url, clientId: `c${i}`, token: 'open', trainer: new QuadraticToyTrainer({ dimension: 8, clientSeed: i }) }).run(),
      ),
    );
  } finally {
    await server.close();
  }
}

async function contentOf(path: string): Promise<string> {
  const store = await LevelFederationStore.open(path);
  try {
    return await storeContentHash(store);
  } finally {
    await store.close();
  }
}

const aside = (dir: string, kind: string): string[] => readdirSync(dir).filter((f) => f.startsWith(`b.${kind}-`));

test('server backup and restore: replace only with --force or --repair, keep what is replaced, refuse a damaged backup', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-cli-backup-'));
  try {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    const file = join(dir, 'fed.backup');
    await federation(a);
    const original = await contentOf(a);

    let r = cli('server', 'backup', file, '--store', a);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /at round 3: .*3 rounds/);
    assert.match(r.out, /created the backup key .*a\.backup-key/);
    assert.equal(statSync(`${a}.backup-key`).mode & 0o777, 0o600, 'the key is readable by its owner only');
    // Into another folder: its own default key did not make the backup, so it is named.
    r = cli('server', '--store', b, 'restore', file);
    assert.notEqual(r.status, 0);
    assert.match(r.out, /no backup key file .*b\.backup-key; a backup is restored with the key it was made with \(--backup-key-file\); nothing was restored/);
    assert.equal(existsSync(b), false);
    r = cli('server', '--store', b, 'restore', file, '--backup-key-file', `${a}.backup-key`);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /restored .* and verified it: round 3 of 3/);
    assert.equal(await contentOf(b), original, 'the restored store holds what was backed up');

    writeFileSync(`${b}.backup-key`, readFileSync(`${a}.backup-key`));
    r = cli('server', 'restore', file, '--store', b);
    assert.notEqual(r.status, 0);
    assert.match(r.out, /holds a federation at round 3; pass --force/);
    r = cli('server', 'restore', file, '--store', b, '--force');
    assert.equal(r.status, 0, r.out);
    assert.equal(aside(dir, 'replaced').length, 1, 'the replaced store is kept');

    // A damaged store: refused by the server (which names the way back) and by a plain restore.
    unlinkSync(join(b, 'CURRENT'));
    r = cli('server', '--store', b, '--port', '0');
    assert.notEqual(r.status, 0);
    assert.match(
      r.out,
      /not a complete store[\s\S]*: npx fedkseed server restore <backup> --store .* --repair; to rebuild it from its round history: npx fedkseed server repair --store /,
    );
    // Nothing to rebuild from without LevelDB's CURRENT: repair says so and changes nothing.
    r = cli('server', 'repair', '--store', b);
    assert.notEqual(r.status, 0);
    assert.match(r.out, /cannot rebuild .* LevelDB cannot open it .*the store was not changed; restore it from a backup/);
    assert.equal(aside(dir, 'damaged').length, 0);
    r = cli('server', 'restore', file, '--store', b);
    assert.notEqual(r.status, 0);
    assert.match(r.out, /--repair \(the damaged folder is moved aside and kept\)/);
    r = cli('server', 'restore', file, '--store', b, '--repair');
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /rounds committed after it are not in the backup/);
    assert.equal(aside(dir, 'damaged').length, 1, 'the damaged store is kept');
    assert.equal(await contentOf(b), original);

    // A damaged backup: refused, nothing created.
    writeFileSync(join(dir, 'bad.backup'), readFileSync(file, 'utf8').replace('"examples":', '"examples": '));
    r = cli('server', 'restore', join(dir, 'bad.backup'), '--store', join(dir, 'c'), '--backup-key-file', `${a}.backup-key`);
    assert.notEqual(r.status, 0);
    assert.match(r.out, /is damaged or was altered: .*SHA-256; nothing was restored/);
    assert.equal(existsSync(join(dir, 'c')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Every file under `dir`, with its bytes' hash. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()) {
    const p = join(dir, f);
    out[f] = statSync(p).isDirectory() ? 'folder' : createHash('sha256').update(readFileSync(p)).digest('hex');
  }
  return out;
}

test(
  'a tampered backup (its SHA-256 recomputed) is refused by its HMAC and leaves the target exactly as it was; a restore into "dir/" leaves no folder inside it',
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedk-cli-hmac-'));
    try {
      const a = join(dir, 'a');
      const file = join(dir, 'fed.backup');
      await federation(a);
      let r = cli('server', 'backup', file, '--store', a);
      assert.equal(r.status, 0, r.out);
      // A token injected and the file resealed with a new SHA-256: what anyone who can edit the file can do.
      const all = readFileSync(file, 'utf8').split('\n');
      const lines = all.slice(0, -2);
      const { hmac } = JSON.parse(all.at(-2) as string) as { hmac: string };
      const token = JSON.stringify({ kind: 'token', id: '0011223344556677', label: 'injected', salt: 'aa', hash: 'bb', createdAt: new Date(0).toISOString() });
      const body = [...lines, token].map((l) => `${l}\n`).join('');
      const sha256 = createHash('sha256').update(body).digest('hex');
      writeFileSync(join(dir, 'stripped.backup'), `${body}${JSON.stringify({ kind: 'end', records: lines.length, sha256 })}\n`);
      writeFileSync(join(dir, 'tampered.backup'), `${body}${JSON.stringify({ kind: 'end', records: lines.length, sha256, hmac })}\n`);
      writeFileSync(join(dir, 'altered.backup'), readFileSync(file, 'utf8').replace(/"eta":[0-9.e-]+/, '"eta":0.5'));
      const before = tree(dir);
      for (const [backup, args, message] of [
        ['stripped.backup', [], /carries no HMAC/],
        ['tampered.backup', [], /its HMAC does not match the backup key/],
        // Accepting backups made before HMACs does not accept a wrong one.
        ['tampered.backup', ['--accept-unauthenticated'], /its HMAC does not match the backup key/],
      ] as const) {
        r = cli('server', 'restore', join(dir, backup), '--store', a, '--force', ...args);
        assert.notEqual(r.status, 0, r.out);
        assert.match(r.out, message);
        assert.match(r.out, /nothing was restored/);
        assert.deepEqual(tree(dir), before, 'the target and its folder are exactly as they were');
      }
      // The backup altered after it was sealed: refused, nothing changed.
      r = cli('server', 'restore', join(dir, 'altered.backup'), '--store', a, '--force');
      assert.notEqual(r.status, 0);
      assert.match(r.out, /is damaged or was altered/);
      assert.deepEqual(tree(dir), before);
      // A store named with a trailing slash: the restored folder is made beside it, not inside, and takes its place.
      const content = await contentOf(a);
      r = cli('server', 'restore', file, '--store', `${a}/`, '--force');
      assert.equal(r.status, 0, r.out);
      assert.equal(await contentOf(a), content);
      assert.deepEqual(
        readdirSync(a).filter((f) => f.includes('restoring')),
        [],
      );
      assert.deepEqual(
        readdirSync(dir).filter((f) => f.includes('restoring')),
        [],
      );
      assert.equal(aside(dir, 'replaced').length + readdirSync(dir).filter((f) => f.startsWith('a.replaced-')).length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
