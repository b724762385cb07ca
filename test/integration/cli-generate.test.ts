// `fedkseed generate` through the real CLI on the bundled model: base and fine-tuned completions side by
// side, greedy (the same output on every run), the file's continuation scored by both, and a clear error
// when there is no checkpoint to compare with.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { packageRoot } from '../../trainer/paths';

const root = packageRoot();
const work = mkdtempSync(join(tmpdir(), 'fedkseed-generate-'));
after(() => rmSync(work, { recursive: true, force: true }));
const code = join(root, 'test', 'fixtures', 'data', 'code');

function fedkseed(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'cli', 'main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('generate: base and fine-tuned completions side by side, the same on every run, the continuation scored by both', () => {
  const checkpoint = join(work, 'ck.json');
  const trained = fedkseed(
    'train',
    '--data',
    code,
    '--seq-len',
    '64',
    '--batch-size',
    '2',
    '--steps',
    '8',
    '--held-out',
    '0',
    '-k',
    '64',
    '--eta',
    '2e-4',
    '--out',
    checkpoint,
  );
  assert.equal(trained.status, 0, trained.stderr);
  const file = join(root, 'trainer', 'zo', 'zo-trainer.ts');
  const args = ['generate', '--file', file, '--line', '40', '--checkpoint', checkpoint, '--max-tokens', '12', '--json'];
  const first = fedkseed(...args);
  assert.equal(first.status, 0, first.stderr);
  const out = JSON.parse(first.stdout) as { base: { text: string; continuationLoss: number }; fineTuned: { text: string; continuationLoss: number } };
  assert.ok(out.base.text.length > 0 && out.fineTuned.text.length > 0);
  assert.ok(Number.isFinite(out.base.continuationLoss) && Number.isFinite(out.fineTuned.continuationLoss));
  assert.notEqual(out.base.continuationLoss, out.fineTuned.continuationLoss, 'the checkpoint changed the model');
  assert.equal(fedkseed(...args).stdout, first.stdout, 'greedy: the same output every time');

  const text = fedkseed('generate', '--prompt', 'def main(', '--checkpoint', checkpoint, '--max-tokens', '8');
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /── base model\n/);
  assert.match(text.stdout, /── fine-tuned \(.*ck\.json, step 8\)\n/);
});

test('generate without a checkpoint says how to make one', () => {
  const r = fedkseed('generate', '--prompt', 'x = ', '--checkpoint', join(work, 'missing.json'));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /missing\.json.*train one first/s);
  const neither = fedkseed('generate');
  assert.notEqual(neither.status, 0);
  assert.match(neither.stderr, /--prompt <text> or --file <path>/);
});
