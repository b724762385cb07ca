// The server's command line accepts only what clients accept: a deadline of at least 1 s, rounds and τ
// within the protocol's fields, a well-formed store URL, a log file that is a file. Client ids are
// bounded the same everywhere (a token is not issued for an id no HELLO can carry) and never reach the
// operator's terminal with control characters in them.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { ErrorCode, type FederationConfig, type Message } from '../../protocol';
import { decodeMessage, encodeMessage } from '../../protocol/node/codec';
import { startServer } from '../../federation/server';
import { readBaseModel } from '../../cli/base-model';

const root = join(import.meta.dirname, '..', '..');

function cli(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'cli', 'main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('server options beyond what clients accept are refused at parse time, nothing created', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-ranges-'));
  try {
    const store = join(dir, 'store');
    const cases: [string[], RegExp][] = [
      [['--deadline', '0.001'], /--deadline.*a deadline is at least 1 s/],
      [['--rounds', '4294967297'], /--rounds.*an integer from 1 to 4,294,967,295/],
      [['--tau', '2000000'], /--tau.*an integer from 1 to 1,048,576/],
      [['--clients-per-round', '4294967296'], /--clients-per-round.*an integer from 1 to 4,294,967,295/],
      [['--store', 'postgres:/db'], /--store postgres:\/db: not a postgres:\/\/ URL nor a folder/],
      [['--log', dir], /--log .*: is a folder, expected a file name/],
    ];
    for (const [args, message] of cases) {
      const r = cli('server', '--port', '0', ...(args[0] === '--store' ? [] : ['--store', store]), ...args);
      assert.notEqual(r.status, 0, `${args.join(' ')}: ${r.out}`);
      assert.match(r.out, message, args.join(' '));
      assert.doesNotMatch(r.out, /EISDIR|at .*\.ts:\d+/, `${args.join(' ')}: a message, not a stack`);
    }
    assert.equal(existsSync(store), false, 'no store was created');
    assert.equal(existsSync(join(root, 'postgres:')), false, 'postgres:/db was not taken for a folder');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('startServer refuses a configuration clients would refuse or misread', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-ranges-'));
  try {
    const config: FederationConfig = {
      k: 16,
      federationSeed: 1,
      epsilon: 1e-3,
      eta: 1e-3,
      tau: 1,
      batchSize: 1,
      sampling: 'uniform',
      weighting: 'examples',
      rounds: 2,
      clientsPerRound: 1,
      deadlineMs: 1000,
    };
    const start = (over: Partial<FederationConfig>) =>
      startServer({ config: { ...config, ...over }, modelHash: new Uint8Array(32), generatorVersion: 1, paramCount: 1, storePath: join(dir, 'store') });
    await assert.rejects(start({ rounds: 2 ** 32 + 1 }), /rounds = 4294967297 does not fit the protocol: clients would read 1/);
    await assert.rejects(start({ tau: 2_000_000 }), /clients would refuse .*tau = 2000000: must be an integer from 1 to 1,048,576/);
    assert.equal(existsSync(join(dir, 'store')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tokens create refuses a client id no HELLO can carry: over 64 bytes, or with control characters', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-ranges-'));
  try {
    const store = join(dir, 'store');
    let r = cli('tokens', 'create', '--store', store, '--client-id', 'x'.repeat(65));
    assert.notEqual(r.status, 0, r.out);
    assert.match(r.out, /65 bytes of UTF-8, at most 64/);
    r = cli('tokens', 'create', '--store', store, '--client-id', 'red\x1b[31m');
    assert.notEqual(r.status, 0, r.out);
    assert.match(r.out, /control or format characters/);
    assert.ok(!r.out.includes('\x1b'), 'the id is not echoed raw');
    r = cli('tokens', 'create', '--store', store, '--client-id', 'x'.repeat(64));
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /^fks_/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a HELLO whose client id holds ANSI escapes is refused and the server's terminal never shows them", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-ranges-'));
  const model = await readBaseModel();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'cli', 'main.ts'), 'server', '--port', '0', '--store', join(dir, 'store'), '--no-auth', '--clients-per-round', '2'],
    { cwd: root },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
  try {
    const deadline = Date.now() + 60_000;
    while (!/listening (ws:\/\/\S+)/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    const url = /listening (ws:\/\/\S+)/.exec(out)?.[1];
    assert.ok(url, out);
    const answers: Message[] = [];
    for (const clientId of ['\x1b[2J\x1b[31mevil', 'ok\u202eevil', 'bell\x07']) {
      const ws = new WebSocket(url);
      await new Promise<void>((resolve, reject) => {
        ws.on('open', () =>
          ws.send(
            encodeMessage({ type: 'hello', clientId, token: 'open', modelHash: Buffer.from(model.identity, 'hex'), lastSyncedRound: 0, generatorVersion: 1 }),
          ),
        );
        ws.on('message', (data: Buffer) => answers.push(decodeMessage(data)));
        ws.on('close', () => resolve());
        ws.on('error', reject);
      });
    }
    assert.deepEqual(
      answers.map((m) => (m.type === 'error' ? m.code : m.type)),
      [ErrorCode.Malformed, ErrorCode.Malformed, ErrorCode.Malformed],
    );
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
  assert.match(out, /control or format characters/);
  const unprintable = [...out].filter((c) => c !== '\n' && /[\p{Cc}\p{Cf}]/u.test(c));
  assert.deepEqual(unprintable, [], 'no control or format character reached the terminal');
});
