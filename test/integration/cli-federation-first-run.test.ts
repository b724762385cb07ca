// The README's federation example, run as a newcomer runs it: real `fedkseed tokens`, `server` and
// `client` processes on loopback. A client whose id does not match its token is told the fix; a round
// that waits for clients says so on both sides; an unreachable server is named with its cause at once.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { packageRoot } from '../../trainer/paths';

const root = packageRoot();
const work = mkdtempSync(join(tmpdir(), 'fedkseed-first-run-'));
const code = join(root, 'test', 'fixtures', 'data', 'code');
const cliArgs = ['--import', 'tsx', join(root, 'cli', 'main.ts')];
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

function fedkseed(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...cliArgs, ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Running {
  readonly child: ChildProcess;
  out: string;
  err: string;
  readonly exited: Promise<number | null>;
  /** Resolves once stdout + stderr match `re`; rejects after `ms`. */
  waitFor(re: RegExp, ms: number): Promise<string>;
}

function start(...args: string[]): Running {
  const child = spawn(process.execPath, [...cliArgs, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const r: Running = {
    child,
    out: '',
    err: '',
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
    waitFor: (re, ms) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(r.out + r.err);
          if (!m) return false;
          clearInterval(poll);
          clearTimeout(timer);
          resolve(m[0]);
          return true;
        };
        const poll = setInterval(check, 50);
        const timer = setTimeout(() => {
          clearInterval(poll);
          reject(new Error(`no ${re} within ${ms} ms; stdout:\n${r.out}\nstderr:\n${r.err}`));
        }, ms);
        check();
      }),
  };
  child.stdout?.on('data', (d: Buffer) => (r.out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (r.err += d.toString()));
  return r;
}

async function stop(r: Running): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return;
  r.child.kill('SIGTERM');
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 5000);
  await r.exited;
  clearTimeout(timer);
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe("the README's federation example", () => {
  it(
    'a token for alice: a client without --id is told to pass --id alice; with it, server and client say the round waits for more clients',
    { timeout: 90_000 },
    async () => {
      const store = join(work, 'server');
      const created = fedkseed('tokens', 'create', '--store', store, '--label', 'alice', '--client-id', 'alice');
      assert.equal(created.status, 0, created.stderr);
      const token = created.stdout.trim();
      const server = start('server', '--port', '0', '--store', store, '--rounds', '2', '--clients-per-round', '5', '--sampling', 'pro');
      try {
        const url = (await server.waitFor(/ws:\/\/127\.0\.0\.1:\d+/, 30_000)).trim();
        // Nobody connected yet: the server says what round 1 waits for.
        await server.waitFor(/round 1 waits for 5 more clients \(0 of 5 connected\)/, 15_000);

        // The README's client line without --id: the id defaults to host + data path, not alice.
        const wrong = fedkseed('client', '--server', url, '--token', token, '--data', code, '--seq-len', '32', '--max-attempts', '1');
        assert.notEqual(wrong.status, 0);
        assert.match(wrong.stderr, /IdentityMismatch/);
        assert.match(wrong.stderr, /pass --id alice\b/, wrong.stderr);

        const client = start(
          'client',
          '--server',
          url,
          '--token',
          token,
          '--id',
          'alice',
          '--data',
          code,
          '--seq-len',
          '32',
          '--out',
          join(work, 'replica.json'),
        );
        try {
          await client.waitFor(/federation: 2 rounds/, 30_000);
          await server.waitFor(/client alice joined/, 10_000);
          await server.waitFor(/round 1 waits for 4 more clients \(1 of 5 connected\)/, 15_000);
          // The client cannot count the others, but it says why nothing happens and where to look.
          const line = await client.waitFor(/round 1 has not started after \d+ s[^\n]*/, 20_000);
          assert.match(line, /waits for enough clients \(5 per round/, line);
          // Still nothing trained: the messages are not a round that ran.
          assert.doesNotMatch(client.err, /local steps/);
        } finally {
          await stop(client);
        }
      } finally {
        await stop(server);
      }
    },
  );

  it('an unreachable server: the first retry line names the cause and the attempt', { timeout: 60_000 }, async () => {
    const port = await closedPort();
    const r = fedkseed(
      'client',
      '--server',
      `ws://127.0.0.1:${port}`,
      '--token',
      'x',
      '--id',
      'nobody',
      '--data',
      code,
      '--seq-len',
      '32',
      '--max-attempts',
      '2',
    );
    assert.notEqual(r.status, 0);
    const lines = r.stderr.split('\n');
    const first = lines.find((l) => /retrying in/.test(l));
    assert.ok(first, r.stderr);
    assert.match(
      first,
      new RegExp(`cannot reach ws://127\\.0\\.0\\.1:${port}: connection refused \\(ECONNREFUSED\\); retrying in \\d+\\.\\d s \\(attempt 1 of 2\\)`),
    );
    assert.match(r.stderr, /gave up after 2 failed connection attempts .*connection refused \(ECONNREFUSED\)/);
  });

  it('a host name that does not resolve is named as such on the first line', { timeout: 60_000 }, async () => {
    const r = fedkseed(
      'client',
      '--server',
      'ws://fedkseed-no-such-host.invalid:7070',
      '--token',
      'x',
      '--id',
      'nobody',
      '--data',
      code,
      '--seq-len',
      '32',
      '--max-attempts',
      '2',
    );
    assert.notEqual(r.status, 0);
    const first = r.stderr.split('\n').find((l) => /retrying in/.test(l));
    assert.ok(first, r.stderr);
    assert.match(
      first,
      /cannot reach ws:\/\/fedkseed-no-such-host\.invalid:7070: the host name fedkseed-no-such-host\.invalid does not resolve \((ENOTFOUND|EAI_AGAIN)\)/,
    );
  });
});
