// `--provider webgpu` through the command line, as a user runs it: train (and its export of the trained
// weights), eval with greedy generation, export, and simulate (whose client processes run `client` on
// WebGPU too) give what the CPU gives, within float rounding for losses and exactly for replicas.
// Skipped, with the reason, where no WebGPU adapter can be created.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { SimulationReport } from '../../simulate/report';
import { writeGpt2 } from '../../trainer/model';
import { bundledModelDir, packageRoot } from '../../trainer/paths';
import { ensureRuntimeDir, skipWithoutWebGpu } from '../helpers/webgpu';

const root = packageRoot();
let work: string;
let modelDir: string;
let dataDir: string;
const code = join(root, 'test', 'fixtures', 'data', 'code');

before(() => {
  ensureRuntimeDir();
  work = mkdtempSync(join(tmpdir(), 'fedkseed-cli-webgpu-'));
  modelDir = join(work, 'model');
  mkdirSync(modelDir);
  writeGpt2(
    { vocab: 4096, ctx: 64, dModel: 32, layers: 2, heads: 2, mlpRatio: 2, tiedEmbeddings: true, dtype: 'float32', seed: 9 },
    join(modelDir, 'model.onnx'),
  );
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(bundledModelDir(), f), join(modelDir, f));
  dataDir = join(work, 'data');
  for (const pkg of ['geometry', 'strings']) {
    mkdirSync(join(dataDir, pkg), { recursive: true });
    for (let f = 0; f < 4; f++) {
      const body = Array.from({ length: 8 }, (_, i) => `def ${pkg}_${f}_${i}(a, b):\n    return a * b + ${i}\n\n`).join('');
      writeFileSync(join(dataDir, pkg, `part_${f}.py`), body);
    }
  }
});
after(() => rmSync(work, { recursive: true, force: true }));

function fedkseed(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'cli', 'main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const close = (a: number, b: number, rel = 1e-5): boolean => Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b));

test('train --provider webgpu trains on the device, exports its trained weights, and eval/export agree with the CPU', async (t) => {
  if (await skipWithoutWebGpu(t)) return;
  const checkpoint = join(work, 'ck.json');
  const trained = join(work, 'trained', 'model.onnx');
  const r = fedkseed(
    'train',
    '--provider',
    'webgpu',
    '--model',
    modelDir,
    '--data',
    code,
    '--seq-len',
    '32',
    '--batch-size',
    '2',
    '--steps',
    '6',
    '--held-out',
    '0.3',
    '--eval-examples',
    '4',
    '-k',
    '64',
    '--eta',
    '1e-3',
    '--out',
    checkpoint,
    '--export',
    trained,
    '--json',
  );
  assert.equal(r.status, 0, r.stderr);
  const events = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string; provider?: string; steps?: number; heldOutBefore?: number; heldOutAfter?: number });
  assert.equal(events[0].provider, 'webgpu');
  const done = events.at(-1);
  assert.equal(done?.steps, 6);
  assert.ok(existsSync(trained));

  // The exported file holds the device's trained weights: its loss is the held-out loss train printed last.
  const viaExport = JSON.parse(
    fedkseed('eval', '--model', join(work, 'trained'), '--data', code, '--seq-len', '32', '--held-out', '0.3', '--max-examples', '4', '--json').stdout,
  ) as { loss: number };
  assert.ok(close(viaExport.loss, done?.heldOutAfter as number, 1e-4), `exported ${viaExport.loss} vs trained ${done?.heldOutAfter}`);

  // The checkpoint on the CPU and on WebGPU: the same replica, losses within float rounding.
  const onCpu = JSON.parse(fedkseed('eval', '--model', modelDir, '--data', code, '--seq-len', '32', '--checkpoint', checkpoint, '--json').stdout) as {
    loss: number;
  };
  const onGpu = JSON.parse(
    fedkseed('eval', '--provider', 'webgpu', '--model', modelDir, '--data', code, '--seq-len', '32', '--checkpoint', checkpoint, '--json').stdout,
  ) as { loss: number };
  assert.ok(close(onCpu.loss, onGpu.loss), `cpu ${onCpu.loss} webgpu ${onGpu.loss}`);

  // export reads the host replica: byte-identical files whatever the provider.
  const [a, b] = [join(work, 'export-cpu.onnx'), join(work, 'export-webgpu.onnx')];
  assert.equal(fedkseed('export', '--model', modelDir, '--checkpoint', checkpoint, '--out', a).status, 0);
  assert.equal(fedkseed('export', '--provider', 'webgpu', '--model', modelDir, '--checkpoint', checkpoint, '--out', b).status, 0);
  assert.ok(readFileSync(a).equals(readFileSync(b)));
});

test('eval --provider webgpu --rouge generates greedily on the device: the same Rouge-L as the CPU', async (t) => {
  if (await skipWithoutWebGpu(t)) return;
  const dolly = join(root, 'test', 'fixtures', 'data', 'dolly.jsonl');
  const run = (provider: string) => {
    const r = fedkseed('eval', '--provider', provider, '--data', dolly, '--split', 'all', '--rouge', '--max-new-tokens', '8', '--batch-size', '4', '--json');
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as { loss: number; rougeL: number; examples: number };
  };
  const [cpu, gpu] = [run('cpu'), run('webgpu')];
  assert.ok(gpu.examples > 0);
  assert.equal(gpu.rougeL, cpu.rougeL);
  assert.ok(close(cpu.loss, gpu.loss), `cpu ${cpu.loss} webgpu ${gpu.loss}`);
});

test('simulate --provider webgpu: the evaluator and both client processes on WebGPU, replicas identical every round', async (t) => {
  if (await skipWithoutWebGpu(t)) return;
  const out = join(work, 'sim');
  const args = [
    '--import',
    'tsx',
    join(root, 'cli', 'main.ts'),
    'simulate',
    '--provider',
    'webgpu',
    '--model',
    modelDir,
    '--data',
    dataDir,
    '--clients',
    '2',
    '-k',
    '64',
    '--rounds',
    '2',
    '--tau',
    '3',
    '--batch-size',
    '2',
    '--seq-len',
    '32',
    '--eval-examples',
    '4',
    '--eta',
    '1e-3',
    '--out',
    out,
  ];
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, stderr.slice(-3000));
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as SimulationReport;
  assert.equal(report.status, 'completed');
  assert.equal(report.totals.replicasIdentical, true);
  for (const x of report.rounds.slice(1)) assert.equal(x.digestsAgree, true, `round ${x.round}`);
  assert.ok(report.clients.every((c) => c.exitCode === 0 && c.finalDigest === report.rounds.at(-1)?.digest));
});

test('bench device-memory measures each way of running the passes in its own process, beside the counted peaks', async (t) => {
  if (await skipWithoutWebGpu(t)) return;
  const r = fedkseed('bench', 'device-memory', '--size', '1m', '--steps', '1', '--cache-dir', join(work, 'bench-cache'), '--json');
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as {
    preset: string;
    rows: { mode: string; countedPeak: number; weightBytes: number; afterUploadBytes: number; afterPassesBytes: number }[];
  };
  assert.deepEqual(
    result.rows.map((row) => row.mode),
    ['iid', 'rank1', 'rank1-no-kept-z'],
  );
  const [iid, rank1, lean] = result.rows.map((row) => row.countedPeak);
  assert.ok(iid > rank1 && rank1 > lean && Math.abs(lean - 3) < 0.1, `counted peaks ${iid}, ${rank1}, ${lean}`);
  for (const row of result.rows) {
    assert.ok(row.weightBytes > 4_000_000, `${row.mode}: the 1m model's span (${row.weightBytes} B)`);
    assert.ok(
      row.afterPassesBytes >= row.afterUploadBytes && row.afterUploadBytes > row.weightBytes,
      `${row.mode}: high-waters ${row.afterUploadBytes} → ${row.afterPassesBytes}`,
    );
  }
});
