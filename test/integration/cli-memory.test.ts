// The memory budget from the command line: --max-memory on train, client and simulate, refused early with
// the figure a model needs, and `fedkseed bench memory` measuring each process in its own child.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runMemoryBench } from '../../bench/memory';
import { packageRoot } from '../../trainer/paths';

const root = packageRoot();
const work = mkdtempSync(join(tmpdir(), 'fedkseed-cli-memory-'));
after(() => rmSync(work, { recursive: true, force: true }));

function fedkseed(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'cli', 'main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 180_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const code = join(root, 'test', 'fixtures', 'data', 'code');

describe('--max-memory', () => {
  it('train and client stop before loading the weights when the model cannot fit, with the figure it needs', () => {
    for (const args of [
      ['train', '--data', code, '--steps', '1', '--out', join(work, 'ck.json')],
      ['client', '--server', 'ws://127.0.0.1:9', '--token', 't', '--data', code, '--out', join(work, 'fed.json')],
    ]) {
      const r = fedkseed(...args, '--max-memory', '20M');
      assert.notEqual(r.status, 0, args[0]);
      assert.match(
        r.stderr,
        /this model needs at least \d+\.\d+ GiB to train \(working weights [\d.]+ GiB, onnxruntime and the process ≈ [\d.]+ GiB\); the memory budget \(--max-memory, fedkseed\.engine\.maxMemory\) is 0\.02 GiB/,
        `${args[0]}: ${r.stderr}`,
      );
      assert.doesNotMatch(r.stderr, /connect/i, 'refused before connecting');
    }
  });

  it('a size that is not one is refused by the option parser', () => {
    const r = fedkseed('train', '--max-memory', 'plenty');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--max-memory.*"plenty" is not a memory size/);
  });

  it('train runs within a budget that fits, and simulate passes the budget on', () => {
    const r = fedkseed(
      'train',
      '--data',
      code,
      '--seq-len',
      '32',
      '--batch-size',
      '2',
      '--steps',
      '2',
      '--held-out',
      '0',
      '-k',
      '16',
      '--out',
      join(work, 'fits.json'),
      '--max-memory',
      '2G',
      '--json',
    );
    assert.equal(r.status, 0, r.stderr);
    for (const command of ['simulate', 'train', 'client']) assert.match(fedkseed(command, '--help').stdout, /--max-memory <size>/, command);
  });
});

describe('fedkseed bench memory', () => {
  it('measures an inference session, a local run and a client in their own processes, with each buffer', async () => {
    const result = await runMemoryBench({ sizes: ['10m'], batches: [1], steps: 1, rounds: 1, maxMemory: 'auto', threads: 1 });
    assert.deepEqual(
      result.rows.map((r) => r.kind),
      ['inference', 'train', 'client'],
    );
    for (const row of result.rows) {
      assert.equal(row.error, undefined, row.error);
      assert.ok(row.peakRssBytes > 50 * 2 ** 20, `${row.kind}: a real process's peak (${row.peakRssBytes})`);
    }
    const [inference, train, client] = result.rows;
    assert.equal(inference.ratio, 1);
    for (const row of [train, client]) {
      const b = row.buffers;
      assert.ok(b, `${row.kind} reports its buffers`);
      assert.equal(b.weights % 4, 0);
      assert.ok(b.weights >= row.parameters * 4, 'the working weights, gaps included');
      assert.equal(b.base, 0, 'w0 is read back from the model file');
      assert.ok(row.runtimeBytes > 0 && row.runtimeBytes < row.peakRssBytes);
      assert.equal(row.ratio, row.peakRssBytes / inference.peakRssBytes);
      assert.ok(row.plan && row.plan.explicitBudget === false);
    }
    assert.equal(result.target.worst, null, 'the target is judged at 1.3B only');
  });
});
