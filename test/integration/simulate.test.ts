// `fedkseed simulate` end to end as a real child process: a server, client processes, the evaluator and
// the report. The model is a small random GPT-2 built here (fast, and its loss falls quickly under ZO);
// the data is a small code corpus generated here (fixed, so the outcome does not drift as the
// repository's own code changes), split by top-level folder.
import { strict as assert } from 'node:assert';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { SimulationReport } from '../../simulate/report';
import { writeGpt2 } from '../../trainer/model';
import { bundledModelDir, packageRoot } from '../../trainer/paths';

const root = packageRoot();
let dir: string;
let modelDir: string;
let dataDir: string;

/** Two packages of plain, repetitive code: token statistics a random model picks up within a few rounds. */
function writeCorpus(target: string): void {
  const packages: Record<string, (i: number) => string> = {
    geometry: (i) => `def area_${i}(width, height):\n    """Area of rectangle ${i}."""\n    return width * height + ${i}\n\n`,
    strings: (i) => `function pad${i}(text, size) {\n  // pads text number ${i}\n  return text.padStart(size + ${i}, ' ');\n}\n\n`,
  };
  // Prose beside the code: simulate reads a folder's code only, eval reads every text file unless told.
  writeFileSync(join(target, 'NOTES.txt'), Array.from({ length: 40 }, (_, i) => `Note ${i}: the rectangles and the padding helpers are examples.\n`).join(''));
  for (const [name, unit] of Object.entries(packages)) {
    mkdirSync(join(target, name));
    for (let f = 0; f < 12; f++) {
      const ext = name === 'geometry' ? 'py' : 'js';
      writeFileSync(join(target, name, `part_${f}.${ext}`), Array.from({ length: 12 }, (_, i) => unit(f * 12 + i)).join(''));
    }
  }
}
const children: ChildProcess[] = [];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedk-sim-'));
  modelDir = join(dir, 'model');
  mkdirSync(modelDir);
  writeGpt2(
    { vocab: 4096, ctx: 64, dModel: 32, layers: 2, heads: 2, mlpRatio: 2, tiedEmbeddings: true, dtype: 'float32', seed: 9 },
    join(modelDir, 'model.onnx'),
  );
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(bundledModelDir(), f), join(modelDir, f));
  dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  writeCorpus(dataDir);
});

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function simulate(out: string, extra: string[]): ChildProcess {
  const args = [
    '--import',
    'tsx',
    join(root, 'cli', 'main.ts'),
    'simulate',
    '--model',
    modelDir,
    '--data',
    dataDir,
    '--clients',
    '2',
    '-k',
    '256',
    '--seq-len',
    '32',
    '--eval-examples',
    '16',
    '--eta',
    '1e-3',
    '--out',
    out,
    ...extra,
  ];
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

function finish(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** Client processes still running for this output folder (their arguments name it). */
function leftovers(out: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', '-a', out], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

test('simulate runs a federation of client processes and writes report.json and a self-contained report.html', async () => {
  const out = join(dir, 'run');
  const r = await finish(simulate(out, ['--rounds', '3', '--tau', '15']));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /report: .*report\.html/);
  assert.match(r.stderr, /round 3\/3 {2}held-out loss \d/);

  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as SimulationReport;
  assert.equal(report.status, 'completed');
  assert.deepEqual(
    report.rounds.map((x) => x.round),
    [0, 1, 2, 3],
  );
  const losses = report.rounds.map((x) => x.heldOutLoss as number);
  assert.ok(losses.every(Number.isFinite));
  assert.ok(losses[3] < losses[0], `held-out loss ${losses.join(' → ')}`);
  assert.equal(report.totals.replicasIdentical, true);
  for (const x of report.rounds.slice(1)) {
    assert.equal(x.participants.length, 2);
    assert.equal(Object.keys(x.clientDigests).length, 2, `round ${x.round}: both clients reported their replica`);
    assert.equal(x.digestsAgree, true);
    assert.ok(x.bytes.up > 0 && x.bytes.down > 0 && x.bytes.fedAvg > 1000 * (x.bytes.up + x.bytes.down));
  }
  assert.equal(report.clients.length, 2);
  assert.ok(report.clients.every((c) => c.exitCode === 0 && c.finalDigest === report.rounds[3].digest));
  assert.ok(
    report.clients[0].groups.every((g) => !report.clients[1].groups.includes(g)),
    'group split: no folder is shared',
  );
  assert.ok(report.checkpoint && existsSync(report.checkpoint));
  assert.equal((JSON.parse(readFileSync(report.checkpoint, 'utf8')) as { round: number }).round, 3);

  // `eval --checkpoint` with no other option scores what the report's final loss scored: the same windows
  // (32 tokens, not eval's default 128), the same held-out examples, code files only.
  const evaluated = execFileSync(
    process.execPath,
    ['--import', 'tsx', join(root, 'cli', 'main.ts'), 'eval', '--model', modelDir, '--data', dataDir, '--checkpoint', report.checkpoint, '--json'],
    {
      cwd: root,
      encoding: 'utf8',
    },
  );
  const scored = JSON.parse(evaluated.trim().split('\n').at(-1) as string) as { loss: number; seqLen: number; examples: number };
  assert.equal(scored.seqLen, 32);
  assert.ok(Math.abs(scored.loss - (losses.at(-1) as number)) < 1e-6, `eval scored ${scored.loss}, the report's final held-out loss is ${losses.at(-1)}`);

  // What changed, in text: held-out windows with each token's loss under the base and the final model,
  // and both models' completions.
  const samples = report.textSamples;
  assert.ok(samples && samples.samples.length > 0, 'the report shows held-out windows');
  assert.equal(samples.round, 3);
  let baseSum = 0;
  let finalSum = 0;
  for (const s of samples.samples) {
    assert.equal(s.base.tokenLoss.length, s.pieces.length - 1);
    assert.equal(s.final?.tokenLoss.length, s.pieces.length - 1);
    assert.ok(s.promptTokens > 0 && s.promptTokens < s.pieces.length);
    assert.ok(s.base.completion.length > 0 && (s.final?.completion.length ?? 0) > 0);
    baseSum += s.base.tokenLoss.reduce((a, b) => a + b, 0);
    finalSum += (s.final?.tokenLoss ?? []).reduce((a, b) => a + b, 0);
  }
  assert.ok(finalSum < baseSum, `the shown windows' loss fell with the held-out loss: ${baseSum} → ${finalSum}`);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /What fine-tuning changed, in text/);
  assert.equal(
    (html.match(/class="tok[^"]*"/g) ?? []).length - 2,
    samples.samples.reduce((n, s) => n + s.pieces.length, 0),
    'one span per token (and two in the legend)',
  );
  assert.match(html, /moved most: /);
  assert.equal((html.match(/<svg /g) ?? []).length, 2, 'two charts');
  assert.doesNotMatch(html, /<script|<link|<img|\ssrc=|\shref=|url\(/i, 'nothing is loaded from anywhere');
  assert.match(html, /Content-Security-Policy/);
  assert.deepEqual(leftovers(out), []);
});

test('Ctrl-C stops the clients and the server and still writes the partial report', async () => {
  const out = join(dir, 'interrupted');
  const child = simulate(out, ['--rounds', '200', '--tau', '20']);
  const done = finish(child);
  // Interrupt once the first round is in the report's making.
  await new Promise<void>((resolve) => {
    let seen = '';
    child.stderr?.on('data', (d: Buffer) => {
      seen += d.toString();
      if (/round\s+1\/200/.test(seen)) resolve();
    });
  });
  child.kill('SIGINT');
  const r = await done;
  assert.equal(r.code, 130, r.stderr);
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as SimulationReport;
  assert.equal(report.status, 'interrupted');
  assert.ok(report.totals.committedRounds >= 1 && report.totals.committedRounds < 200);
  assert.ok(report.rounds.length >= 2);
  assert.ok(existsSync(join(out, 'report.html')));
  assert.deepEqual(leftovers(out), []);
});
