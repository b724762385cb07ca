// The engine's command-line surface, run as a user runs it: a real `fedkseed` process on the
// bundled model, checking what it prints and writes, and that bad input is refused by name.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { packageRoot } from '../../trainer/paths';

const root = packageRoot();
const work = mkdtempSync(join(tmpdir(), 'fedkseed-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

function fedkseed(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'cli', 'main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const code = join(root, 'test', 'fixtures', 'data', 'code');

describe('fedkseed eval / train / export', () => {
  it('--help lists every subcommand', () => {
    const r = fedkseed('--help');
    assert.equal(r.status, 0);
    for (const c of ['eval', 'train', 'export', 'server', 'client', 'simulate', 'bench']) assert.match(r.stdout, new RegExp(`\\n\\s+${c}\\b`));
  });

  let baseLoss = Number.NaN;
  it('eval --json prints loss and tokens for the bundled model', () => {
    const r = fedkseed('eval', '--data', code, '--seq-len', '64', '--json');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { loss: number; tokens: number };
    assert.ok(out.loss > 0 && Number.isFinite(out.loss));
    assert.ok(Number.isInteger(out.tokens) && out.tokens > 0);
    baseLoss = out.loss;
  });

  it('train --json streams events and writes a checkpoint that eval and export reproduce exactly', () => {
    const checkpoint = join(work, 'ck.json');
    const model = join(work, 'out', 'model.onnx');
    const r = fedkseed('train', '--data', code, '--seq-len', '64', '--batch-size', '2', '--steps', '12', '--eval-every', '6', '--held-out', '0.3', '--eval-examples', '8', '-k', '64', '--out', checkpoint, '--export', model, '--json');
    assert.equal(r.status, 0, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; [k: string]: unknown });
    assert.equal(events[0].event, 'start');
    assert.equal(events.filter((e) => e.event === 'step').length, 12);
    assert.equal(events.filter((e) => e.event === 'eval').length, 3);
    const done = events.at(-1) as { event: string; steps: number };
    assert.equal(done.event, 'done');
    assert.equal(done.steps, 12);
    const ck = JSON.parse(readFileSync(checkpoint, 'utf8')) as { k: number; coefficients: Record<string, number> };
    assert.equal(ck.k, 64);
    assert.ok(Object.keys(ck.coefficients).length > 0);
    assert.ok(existsSync(model) && existsSync(join(work, 'out', 'tokenizer.json')));

    // The checkpoint evaluated on the base model and the exported file give the same loss, and it
    // differs from the base model's: training changed the model.
    const viaCheckpoint = JSON.parse(fedkseed('eval', '--data', code, '--seq-len', '64', '--checkpoint', checkpoint, '--json').stdout) as { loss: number };
    const exported = join(work, 'exported.onnx');
    assert.equal(fedkseed('export', '--checkpoint', checkpoint, '--out', exported).status, 0);
    const viaExport = JSON.parse(fedkseed('eval', '--model', exported, '--tokenizer', join(root, 'models', 'tiny-code-lm', 'tokenizer.json'), '--data', code, '--seq-len', '64', '--json').stdout) as { loss: number };
    assert.ok(Math.abs(viaCheckpoint.loss - viaExport.loss) < 1e-6, `${viaCheckpoint.loss} vs ${viaExport.loss}`);
    assert.notEqual(viaCheckpoint.loss, baseLoss);
  });

  it('refuses bad input with a message that names the problem', () => {
    const notOnnx = join(work, 'not-a-model.onnx');
    writeFileSync(notOnnx, 'this is not a protobuf');
    const r1 = fedkseed('eval', '--model', notOnnx, '--tokenizer', join(root, 'models', 'tiny-code-lm', 'tokenizer.json'), '--data', code);
    assert.notEqual(r1.status, 0);
    assert.match(r1.stderr, /not-a-model\.onnx/);

    const r2 = fedkseed('eval', '--model', join(work, 'missing.onnx'), '--data', code);
    assert.notEqual(r2.status, 0);
    assert.match(r2.stderr, /model file not found: .*missing\.onnx/);

    const badCheckpoint = join(work, 'bad-ck.json');
    writeFileSync(badCheckpoint, JSON.stringify({ format: 'fedkseed-coefficients', version: 1 }));
    const r3 = fedkseed('eval', '--data', code, '--checkpoint', badCheckpoint);
    assert.notEqual(r3.status, 0);
    assert.match(r3.stderr, /bad-ck\.json is invalid at baseModel/);

    const badData = join(work, 'bad.jsonl');
    writeFileSync(badData, '{"instruction": "a", "context": "", "response": "b", "category": "c"}\n{oops\n');
    const r4 = fedkseed('eval', '--data', badData, '--format', 'dolly', '--strict');
    assert.notEqual(r4.status, 0);
    assert.match(r4.stderr, /bad\.jsonl:2/);
    const r5 = fedkseed('eval', '--data', badData, '--format', 'dolly', '--json');
    assert.equal(r5.status, 0, r5.stderr);
    const lines = r5.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines[0], { event: 'data-problem', file: badData, line: 2, message: lines[0].message });
    assert.ok('loss' in (lines.at(-1) as object));

    const r6 = fedkseed('train', '--eta', '-1');
    assert.notEqual(r6.status, 0);
    assert.match(r6.stderr, /--eta/);
  });
});
