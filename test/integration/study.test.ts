// `fedkseed bench study --quick` as a real child process: it completes and writes its outputs, and
// Ctrl-C still leaves the results of what ran. Figures are not asserted: the study is evidence, not a test.
import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { StudyResults } from '../../bench/study/run-study';
import { DEFAULT_FORTUNES_DIR } from '../../bench/study/tasks';
import { packageRoot } from '../../trainer/paths';

const root = packageRoot();
// The second task reads Debian's fortunes corpus (.ci/run installs it). Without it the study runs its
// code task alone, and the tests say so instead of failing on a missing system package.
const haveFortunes = existsSync(join(DEFAULT_FORTUNES_DIR, 'fortunes'));
const tasks = haveFortunes ? ['code', 'fortunes'] : ['code'];
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
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'cli', 'main.ts'), 'bench', 'study', '--quick', '--out', out, ...extra], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, done };
}

const readResults = (out: string): StudyResults => JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as StudyResults;

test('bench study --quick completes and writes results.json, the table and the figures', { timeout: 600_000 }, async (t) => {
  if (!haveFortunes) t.diagnostic(`no fortunes corpus at ${DEFAULT_FORTUNES_DIR} (apt-get install fortunes): the code task only`);
  const out = join(dir, 'quick');
  const { code, stdout, stderr } = await study(out, ['--tasks', tasks.join(',')]).done;
  assert.equal(code, 0, stderr.slice(-2000));
  const results = readResults(out);
  assert.equal(results.status, 'completed');
  assert.deepEqual(
    results.tasks.map((x) => x.task.id),
    tasks,
  );
  for (const file of results.files) assert.ok(existsSync(join(out, file)), `${file} is missing`);
  assert.ok(results.files.some((f) => f.endsWith('-loss-vs-round.svg')));
  assert.ok(
    results.runs.every((r) => r.status === 'completed' && r.rounds.slice(1).every((x) => x.verified === true)),
    'every replica matches its rebuild',
  );
  const table = readFileSync(join(out, 'results.md'), 'utf8');
  assert.match(table, /\| FedKSeed-Pro K=64 \|/);
  // The paper's 5 methods, and FedKSeed-Pro with tensor-rms perturbations at each of --quick's 2 Ks,
  // each replica rebuilt from the base and its coefficients with its own shape (verified above).
  assert.match(table, /\| FedKSeed-Pro K=64 tensor-rms \|/);
  assert.ok(results.files.some((f) => f.endsWith('-shape.svg')));
  assert.match(stdout, new RegExp(`completed: ${7 * tasks.length} federations`));
  assert.match(stderr, /round 1\/3/);
});

test('Ctrl-C stops the study and still writes the results so far', { timeout: 300_000 }, async () => {
  const out = join(dir, 'interrupted');
  const { child, done } = study(out, ['--tasks', haveFortunes ? 'fortunes' : 'code']);
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
