// `fedkseed bench study --quick` as a real child process: it completes and writes its outputs, and
// Ctrl-C still leaves the results of what ran. Figures are not asserted: the study is evidence, not a test.
import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { StudyResults } from '../../bench/study/run-study';
import { packageRoot } from '../../trainer/paths';

const root = packageRoot();
let dir: string;
const children: ChildProcess[] = [];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedk-study-'));
});

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function study(out: string, extra: string[] = []): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'cli', 'main.ts'), 'bench', 'study', '--quick', '--out', out, ...extra], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}

const readResults = (out: string): StudyResults => JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as StudyResults;

test('bench study --quick completes and writes results.json, the table and the figures', { timeout: 600_000 }, async () => {
  const out = join(dir, 'quick');
  const { code, stdout, stderr } = await study(out).done;
  assert.equal(code, 0, stderr.slice(-2000));
  const results = readResults(out);
  assert.equal(results.status, 'completed');
  assert.deepEqual(results.tasks.map((t) => t.task.id), ['code', 'fortunes']);
  for (const file of results.files) assert.ok(existsSync(join(out, file)), `${file} is missing`);
  assert.ok(results.files.some((f) => f.endsWith('-loss-vs-round.svg')));
  assert.ok(results.runs.every((r) => r.status === 'completed' && r.rounds.slice(1).every((x) => x.verified === true)), 'every replica matches its rebuild');
  assert.match(readFileSync(join(out, 'results.md'), 'utf8'), /\| FedKSeed-Pro K=64 \|/);
  assert.match(stdout, /completed: 10 federations/);
  assert.match(stderr, /round 1\/3/);
});

test('Ctrl-C stops the study and still writes the results so far', { timeout: 300_000 }, async () => {
  const out = join(dir, 'interrupted');
  const { child, done } = study(out, ['--tasks', 'fortunes']);
  // Interrupt once the second federation is under way, so one finished run is in the results.
  await new Promise<void>((resolve) => {
    child.stderr?.on('data', (d: Buffer) => {
      if (/fedkseed-k1024 #0 round 1\//.test(d.toString())) resolve();
    });
  });
  child.kill('SIGINT');
  const { code } = await done;
  assert.equal(code, 130);
  const results = readResults(out);
  assert.equal(results.status, 'interrupted');
  assert.ok(results.runs.some((r) => r.method === 'fedkseed-k64' && r.status === 'completed'));
});
