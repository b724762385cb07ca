// `fedkseed tokens`, `fedkseed server` and `fedkseed client` as real processes: a hashed token admits a
// client, a wrong one is refused with a clear error, the client exits when the federation finishes and
// leaves a checkpoint of its replica at the final round.
import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeGpt2 } from '../../trainer/model';
import { bundledModelDir, packageRoot } from '../../trainer/paths';

const root = packageRoot();
const cli = ['--import', 'tsx', join(root, 'cli', 'main.ts')];
let dir: string;
let model: string;
const children: ChildProcess[] = [];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedk-cli-'));
  model = join(dir, 'model');
  mkdirSync(model);
  writeGpt2({ vocab: 4096, ctx: 64, dModel: 32, layers: 1, heads: 2, mlpRatio: 2, tiedEmbeddings: true, dtype: 'float32', seed: 3 }, join(model, 'model.onnx'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(bundledModelDir(), f), join(model, f));
});

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function fedkseed(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...cli, ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function client(url: string, token: string, id: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(
    process.execPath,
    [
      ...cli,
      'client',
      '--server',
      url,
      '--id',
      id,
      '--model',
      model,
      '--data',
      join(root, 'protocol'),
      '--seq-len',
      '32',
      '--threads',
      '1',
      '--max-attempts',
      '1',
      '--out',
      join(dir, `${id}.json`),
      '--json',
    ],
    {
      cwd: root,
      env: { ...process.env, FEDKSEED_TOKEN: token },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

test('a token admits a client that trains until the federation finishes; a wrong token is refused', async () => {
  const store = join(dir, 'store');
  const created = fedkseed(['tokens', 'create', '--store', store, '--label', 'alice', '--json']);
  assert.equal(created.status, 0, created.stderr);
  const { id, token } = JSON.parse(created.stdout) as { id: string; token: string };
  assert.match(token, /^fks_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  const listed = fedkseed(['tokens', 'list', '--store', store]);
  assert.match(listed.stdout, new RegExp(`${id}.*alice`));
  const secret = token.slice(22);
  assert.ok(!listed.stdout.includes(secret), 'the secret is never listed');
  for (const f of readdirSync(store)) assert.ok(!readFileSync(join(store, f)).includes(secret), `the secret is not stored (${f})`);

  const server = spawn(
    process.execPath,
    [
      ...cli,
      'server',
      '--store',
      store,
      '--port',
      '0',
      '--model',
      model,
      '--rounds',
      '2',
      '--clients-per-round',
      '1',
      '--tau',
      '5',
      '-k',
      '64',
      '--batch-size',
      '2',
      '--exit-when-finished',
      '--log',
      join(dir, 'server.log'),
    ],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(server);
  const serverExit = new Promise<number | null>((resolve) => server.on('close', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    server.on('close', (code) => reject(new Error(`server exited with ${code}`)));
  });

  const refused = await client(url, `fks_${id}_${'A'.repeat(43)}`, 'mallory');
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /AuthFailed|token is unknown or revoked/);

  const ok = await client(url, token, 'alice');
  assert.equal(ok.code, 0, ok.stderr);
  const events = ok.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { event: string; round?: number; digest?: string });
  const done = events.find((e) => e.event === 'done');
  assert.equal(done?.round, 2);
  assert.ok(events.some((e) => e.event === 'step'));
  const checkpoint = JSON.parse(readFileSync(join(dir, 'alice.json'), 'utf8')) as { round: number; k: number; coefficients: Record<string, number> };
  assert.equal(checkpoint.round, 2);
  assert.equal(checkpoint.k, 64);
  assert.ok(Object.keys(checkpoint.coefficients).length > 0);
  assert.equal(await serverExit, 0);
  const log = readFileSync(join(dir, 'server.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { event: string });
  assert.ok(log.some((e) => e.event === 'round_committed') && log.some((e) => e.event === 'finished'));
});
