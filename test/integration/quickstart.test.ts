// docs/quickstart.md, run as written: every `npx fedkseed …` line of its ```bash blocks runs for real, in
// the doc's order, as `node bin/fedkseed.js …` with the doc's own arguments, in a temporary folder that
// holds a copy of the inputs the doc names (so the walk's outputs stay out of the work tree). Two
// substitutions only: the `<token>` placeholder becomes the token `tokens create` printed, and the server
// listens on a free port (`--port 0`) that the client is pointed at, so a port in use elsewhere on the
// machine cannot fail the walk. `npm install` and `npm start` are the README's and CI's to run; here they
// must only be in the doc. Every process is bounded by a timeout.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { after, test } from 'node:test';
import { packageRoot } from '../../trainer/paths';

const root = packageRoot();
const docPath = join(root, 'docs', 'quickstart.md');
const cli = join(root, 'bin', 'fedkseed.js');
const work = mkdtempSync(join(tmpdir(), 'fedkseed-quickstart-'));
after(() => rmSync(work, { recursive: true, force: true }));

const COMMAND_MS = 150_000;
const SERVER_READY_MS = 30_000;

/** The lines of the doc's ```bash blocks, comments and blank lines dropped. */
function bashLines(markdown: string): string[] {
  const lines: string[] = [];
  for (const block of markdown.matchAll(/^```bash\n([\s\S]*?)^```$/gm)) {
    for (const raw of block[1].split('\n')) {
      const line = raw.replace(/(^|\s)#.*$/, '').trim();
      if (line) lines.push(line);
    }
  }
  return lines;
}

/** A command line split into words as a POSIX shell would for these lines: blanks, '…' and "…" quotes. */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g)) out.push(m[1] ?? m[2]?.replace(/\\(.)/g, '$1') ?? m[3]);
  return out;
}

function option(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function start(args: readonly string[]): { child: ChildProcess; output: { stdout: string; stderr: string } } {
  const env = { ...process.env };
  delete env.FEDKSEED_TOKEN;
  const child = spawn(process.execPath, [cli, ...args], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    output.stdout += s;
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    output.stderr += s;
  });
  return { child, output };
}

function finished(child: ChildProcess, output: { stdout: string; stderr: string }, ms: number, what: string): Promise<Result> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      output.stderr += `\n[test] ${what} ran past ${ms / 1000} s and was killed`;
      child.kill('SIGKILL');
    }, ms);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, ...output });
    });
  });
}

function run(args: readonly string[], ms = COMMAND_MS): Promise<Result> {
  const { child, output } = start(args);
  return finished(child, output, ms, args.join(' '));
}

function waitFor(output: { stdout: string; stderr: string }, pattern: RegExp, ms: number, child: ChildProcess): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const began = Date.now();
    const poll = setInterval(() => {
      const m = output.stdout.match(pattern) ?? output.stderr.match(pattern);
      if (m) {
        clearInterval(poll);
        resolve(m);
      } else if (child.exitCode !== null || child.signalCode !== null || Date.now() - began > ms) {
        clearInterval(poll);
        reject(new Error(`no ${pattern} from the server (exit ${child.exitCode ?? child.signalCode}):\n${output.stdout}\n${output.stderr}`));
      }
    }, 100);
  });
}

function lossOf(stdout: string): number {
  const m = stdout.match(/^loss (\d+\.\d+)\s/m);
  assert.ok(m, `a loss line in:\n${stdout}`);
  return Number(m[1]);
}

test('docs/quickstart.md: every fedkseed command runs as written and does what the doc says', { timeout: 600_000 }, async () => {
  assert.ok(existsSync(join(root, 'dist', 'cli.js')), 'dist/cli.js: run `npm run build` first');
  const lines = bashLines(readFileSync(docPath, 'utf8'));
  assert.ok(lines.includes('npm install'), 'the doc installs with npm install');
  assert.ok(lines.includes('npm start'), 'the doc ends with npm start');
  const unknown = lines.filter((l) => l !== 'npm install' && l !== 'npm start' && !l.startsWith('npx fedkseed '));
  assert.deepEqual(unknown, [], 'every line of a bash block is one the test runs (or npm install / npm start)');
  const commands = lines.filter((l) => l.startsWith('npx fedkseed ')).map((l) => words(l).slice(2));
  assert.deepEqual([...new Set(commands.map((c) => c[0]))].sort(), ['client', 'eval', 'export', 'generate', 'server', 'tokens', 'train']);
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  assert.match(readme, /\]\(docs\/quickstart\.md\)/, 'the README links the quickstart');

  // The inputs the doc names, copied as a fresh clone has them.
  for (const args of commands) {
    for (const input of [option(args, '--data'), option(args, '--file')]) {
      if (!input || isAbsolute(input)) continue;
      const top = input.split(/[\\/]/)[0];
      if (!existsSync(join(work, top))) cpSync(join(root, top), join(work, top), { recursive: true });
    }
  }

  let token: string | null = null;
  let server: { child: ChildProcess; output: { stdout: string; stderr: string }; url: string; rounds: number } | null = null;
  let baseLoss: number | null = null;
  let trained: { out: string; bestLoss: number } | null = null;
  let serverExit: Result | null = null;
  try {
    for (const doc of commands) {
      const args = doc.map((a) => (a === '<token>' ? (token ?? assert.fail('<token> before a token was created')) : a));
      const name = args[0];
      const shown = `npx fedkseed ${doc.join(' ')}`;

      if (name === 'server') {
        const port = args.indexOf('--port');
        if (port >= 0) args[port + 1] = '0';
        const { child, output } = start(args);
        const m = await waitFor(output, /listening (ws:\/\/\S+)/, SERVER_READY_MS, child);
        server = { child, output, url: m[1], rounds: Number(option(args, '--rounds') ?? 40) };
        continue;
      }
      if (name === 'client') {
        assert.ok(server, 'the doc starts the server before the client');
        const i = args.indexOf('--server');
        assert.match(args[i + 1], /^ws:\/\/127\.0\.0\.1:\d+$/);
        args[i + 1] = server.url;
      }

      const r = await run(args);
      assert.equal(r.code, 0, `${shown}\nexit ${r.code ?? r.signal}\n${r.stdout}\n${r.stderr}`);

      if (name === 'tokens') {
        const m = r.stdout.match(/^(fks_\S+)$/m);
        assert.ok(m, `a token on its own line:\n${r.stdout}`);
        token = m[1];
      } else if (name === 'eval') {
        const loss = lossOf(r.stdout);
        const checkpoint = option(args, '--checkpoint');
        if (!checkpoint) {
          assert.match(r.stdout, /^base model \(/m);
          baseLoss = loss;
        } else {
          assert.ok(trained && checkpoint === trained.out, `${shown}: evaluates the checkpoint train wrote`);
          assert.match(r.stdout, new RegExp(`^checkpoint ${checkpoint.replace(/\./g, '\\.')} \\(`, 'm'));
          assert.ok(Math.abs(loss - trained.bestLoss) < 5e-4, `eval's loss ${loss} is the one train kept (${trained.bestLoss})`);
          if (baseLoss !== null) assert.ok(loss <= baseLoss + 5e-4, `the kept point (${loss}) is no worse than the base model (${baseLoss})`);
        }
      } else if (name === 'train') {
        const out = option(args, '--out') ?? 'fedkseed-checkpoint.json';
        const steps = Number(option(args, '--steps'));
        assert.ok(existsSync(join(work, out)), `${out} written`);
        const checkpoint = JSON.parse(readFileSync(join(work, out), 'utf8')) as { format: string; shape: string; steps: number };
        assert.equal(checkpoint.format, 'fedkseed-coefficients');
        if (!args.includes('--shape')) assert.equal(checkpoint.shape, 'tensor-rms', 'the default perturbation shape');
        const best =
          r.stdout.match(/^checkpoint \S+: the best held-out loss, (\d+\.\d+) at step (\d+)/m) ??
          r.stdout.match(/^warning: the held-out loss never went below where the run started \((\d+\.\d+)\)/m);
        assert.ok(best, `train says which point ${out} keeps:\n${r.stdout}`);
        assert.equal(checkpoint.steps, best[2] === undefined ? 0 : Number(best[2]), `${out} holds the point train names`);
        assert.match(r.stdout, new RegExp(`^held-out loss \\d+\\.\\d+ → \\d+\\.\\d+ after ${steps} steps`, 'm'));
        const last = out.replace(/\.json$/, '.last.json');
        const namesLast = r.stdout.includes(`the last step's coefficients: ${last}`);
        assert.equal(existsSync(join(work, last)), namesLast, `${last} is there exactly when train names it`);
        trained = { out, bestLoss: Number(best[1]) };
      } else if (name === 'generate') {
        assert.match(r.stdout, /^── base model {2}\(the file's next \d+ tokens: loss \d+\.\d+\)$/m);
        assert.match(r.stdout, /^── fine-tuned \(\S+, step \d+\) {2}\(the file's next \d+ tokens: loss \d+\.\d+\)$/m);
      } else if (name === 'export') {
        const out = option(args, '--out') ?? assert.fail('export --out');
        assert.ok(statSync(join(work, out)).size > 1_000_000, `${out} holds the model's weights`);
        assert.ok(existsSync(join(work, dirname(out), 'tokenizer.json')), 'the tokenizer beside the model');
        assert.match(r.stdout, new RegExp(`^wrote ${out.replace(/[./]/g, '\\$&')} `, 'm'));
      } else if (name === 'client') {
        assert.ok(server);
        const said = r.stdout + r.stderr; // progress lines go to stderr
        assert.match(said, new RegExp(`^the federation finished at round ${server.rounds}; replica \\S+ saved as`, 'm'));
        assert.match(said, new RegExp(`^round ${server.rounds} committed: 1 client\\(s\\)`, 'm'));
        assert.ok(existsSync(join(work, option(args, '--out') ?? 'fedkseed-federated.json')), 'the replica checkpoint');
        await waitFor(server.output, new RegExp(`the federation finished at round ${server.rounds}`), 10_000, server.child);
      }
    }
    assert.ok(token && server && trained && baseLoss !== null, 'the walk created a token, ran a server, trained and evaluated');
  } finally {
    // The doc's Ctrl-C: the server stops on a signal, whatever happened above.
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      const closed = finished(server.child, server.output, 15_000, 'the server after SIGTERM');
      server.child.kill('SIGTERM');
      serverExit = await closed;
    }
  }
  assert.equal(serverExit?.code, 0, `the server closes cleanly on a signal:\n${serverExit?.stdout}\n${serverExit?.stderr}`);
});
