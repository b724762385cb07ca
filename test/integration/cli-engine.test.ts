// The engine's command-line surface, run as a user runs it: a real `fedkseed` process on the
// bundled model, checking what it prints and writes, and that bad input is refused by name.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

  it('eval --json prints loss and tokens for the bundled model', () => {
    const r = fedkseed('eval', '--data', code, '--seq-len', '64', '--json');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { loss: number; tokens: number };
    assert.ok(out.loss > 0 && Number.isFinite(out.loss));
    assert.ok(Number.isInteger(out.tokens) && out.tokens > 0);
  });

  it('train --json streams events and writes a checkpoint that eval and export reproduce exactly', () => {
    const checkpoint = join(work, 'ck.json');
    const model = join(work, 'out', 'model.onnx');
    const r = fedkseed(
      'train',
      '--data',
      code,
      '--seq-len',
      '64',
      '--batch-size',
      '2',
      '--steps',
      '12',
      '--eval-every',
      '6',
      '--held-out',
      '0.3',
      '--eval-examples',
      '8',
      '-k',
      '64',
      '--out',
      checkpoint,
      '--export',
      model,
      '--json',
    );
    assert.equal(r.status, 0, r.stderr);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; [k: string]: unknown });
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
    // differs from the base model's: training changed the model. The checkpoint's own evaluation setup
    // (held-out share 0.3, 8 examples) is taken by eval --checkpoint and given to the exported model's eval.
    const viaCheckpoint = JSON.parse(fedkseed('eval', '--data', code, '--checkpoint', checkpoint, '--json').stdout) as {
      loss: number;
      seqLen: number;
      examples: number;
    };
    assert.equal(viaCheckpoint.seqLen, 64);
    // Without --data (whose default is the working folder) the checkpoint's own dataset is scored.
    const ownData = JSON.parse(fedkseed('eval', '--checkpoint', checkpoint, '--json').stdout) as { loss: number };
    assert.equal(ownData.loss, viaCheckpoint.loss);
    const exported = join(work, 'exported.onnx');
    assert.equal(fedkseed('export', '--checkpoint', checkpoint, '--out', exported).status, 0);
    const viaExport = JSON.parse(
      fedkseed(
        'eval',
        '--model',
        exported,
        '--tokenizer',
        join(root, 'models', 'tiny-code-lm', 'tokenizer.json'),
        '--data',
        code,
        '--seq-len',
        '64',
        '--held-out',
        '0.3',
        '--max-examples',
        '8',
        '--json',
      ).stdout,
    ) as { loss: number };
    assert.ok(Math.abs(viaCheckpoint.loss - viaExport.loss) < 1e-6, `${viaCheckpoint.loss} vs ${viaExport.loss}`);
    const base = JSON.parse(fedkseed('eval', '--data', code, '--seq-len', '64', '--held-out', '0.3', '--max-examples', '8', '--json').stdout) as {
      loss: number;
    };
    assert.notEqual(viaCheckpoint.loss, base.loss);
  });

  it('a learning rate that diverges stops the run, names --eta, and keeps the best checkpoint (here the start) beside the last', () => {
    const checkpoint = join(work, 'diverged.json');
    const r = fedkseed(
      'train',
      '--data',
      code,
      '--seq-len',
      '64',
      '--batch-size',
      '2',
      '--steps',
      '200',
      '--eval-every',
      '5',
      '--held-out',
      '0.3',
      '--eval-examples',
      '8',
      '-k',
      '64',
      '--eta',
      '50',
      '--out',
      checkpoint,
      '--json',
    );
    assert.equal(r.status, 1, 'a diverged run fails');
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; [k: string]: unknown });
    const diverged = events.find((e) => e.event === 'diverged');
    assert.ok(diverged, 'a diverged event');
    const done = events.at(-1) as {
      event: string;
      steps: number;
      best: { step: number; loss: number };
      heldOutBefore: number;
      heldOutAfter: number;
      diverged: string;
      lastCheckpoint: string;
    };
    assert.equal(done.event, 'done');
    assert.ok(done.steps < 200, `stopped early, after ${done.steps} steps`);
    assert.match(done.diverged, /--eta/);
    assert.ok(done.best.loss <= done.heldOutBefore && done.best.loss < done.heldOutAfter, JSON.stringify(done));
    // --out holds the best point; evaluating it gives the best loss, not the diverged one. The checkpoint
    // records how that loss was measured (64-token windows, held-out share 0.3, 8 examples), so eval needs
    // no options to score the same examples.
    const kept = JSON.parse(fedkseed('eval', '--data', code, '--checkpoint', checkpoint, '--json').stdout) as { loss: number };
    assert.ok(Math.abs(kept.loss - done.best.loss) < 1e-5, `${kept.loss} vs ${done.best.loss}`);
    assert.ok(existsSync(done.lastCheckpoint), "the last step's coefficients are kept too");
    // The text output says it.
    const text = fedkseed(
      'train',
      '--data',
      code,
      '--seq-len',
      '64',
      '--batch-size',
      '2',
      '--steps',
      '200',
      '--eval-every',
      '5',
      '--held-out',
      '0.3',
      '--eval-examples',
      '8',
      '-k',
      '64',
      '--eta',
      '50',
      '--out',
      checkpoint,
      '--force',
    );
    assert.equal(text.status, 1);
    assert.match(text.stdout, /diverged.*lower --eta/);
    assert.match(text.stdout, /never went below where the run started/);
  });

  it('train prints the time left at its pace, and a continued run counts its steps from where it goes on', () => {
    const first = join(work, 'paced.json');
    const r = fedkseed(
      'train',
      '--data',
      code,
      '--seq-len',
      '64',
      '--batch-size',
      '2',
      '--steps',
      '20',
      '--eval-every',
      '0',
      '-k',
      '64',
      '--keep',
      'last',
      '--out',
      first,
    );
    assert.equal(r.status, 0, r.stderr);
    const progress = r.stderr.split('\n').filter((l) => /^step +\d+\/\d+ +train loss/.test(l));
    assert.ok(progress.length >= 5, r.stderr);
    assert.ok(
      progress.every((l) => / \d+\/20 /.test(l)),
      'the first run counts to its 20 steps',
    );
    assert.ok(
      progress.slice(1, -1).every((l) => / ~\d+ (s|min) left$/.test(l)),
      `every line but the first and last says the time left:\n${progress.join('\n')}`,
    );
    // Continued: its steps are 21–30 of 30, and its pace is its own.
    const more = fedkseed(
      'train',
      '--data',
      code,
      '--seq-len',
      '64',
      '--batch-size',
      '2',
      '--steps',
      '10',
      '--eval-every',
      '0',
      '-k',
      '64',
      '--from',
      first,
      '--out',
      join(work, 'paced-more.json'),
    );
    assert.equal(more.status, 0, more.stderr);
    const continued = more.stderr.split('\n').filter((l) => /^step +\d+\/\d+ +train loss/.test(l));
    assert.match(continued[0], /^step +21\/30 /);
    assert.match(continued.at(-1) as string, /^step +30\/30 /);
  });

  it('refuses bad input with a message that names the problem', () => {
    const notOnnx = join(work, 'not-a-model.onnx');
    writeFileSync(notOnnx, 'this is not a protobuf');
    const r1 = fedkseed('eval', '--model', notOnnx, '--tokenizer', join(root, 'models', 'tiny-code-lm', 'tokenizer.json'), '--data', code);
    assert.notEqual(r1.status, 0);
    assert.match(r1.stderr, /not-a-model\.onnx/);

    const r2 = fedkseed('eval', '--model', join(work, 'missing.onnx'), '--data', code);
    assert.notEqual(r2.status, 0);
    assert.match(r2.stderr, /--model .*missing\.onnx: no such file or folder/);

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
    // One good example: nothing to hold out, so score all of it.
    const r5 = fedkseed('eval', '--data', badData, '--format', 'dolly', '--split', 'all', '--json');
    assert.equal(r5.status, 0, r5.stderr);
    const lines = r5.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines[0], { event: 'data-problem', file: badData, line: 2, message: lines[0].message });
    assert.ok('loss' in (lines.at(-1) as object));

    const r6 = fedkseed('train', '--eta', '-1');
    assert.notEqual(r6.status, 0);
    assert.match(r6.stderr, /--eta/);
  });
});

/** A fresh clone's first try: a folder of eight small files, one window each. */
function eightFiles(): string {
  const dir = join(work, 'eight');
  mkdirSync(dir, { recursive: true });
  for (let i = 1; i <= 8; i++) writeFileSync(join(dir, `file${i}.py`), `def f${i}(x):\n    return x * ${i} + 1\n\nprint(f${i}(3))\n`);
  return dir;
}

type Event = { event: string; [k: string]: unknown };
const events = (stdout: string): Event[] =>
  stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Event);
const quick = ['--steps', '2', '-k', '64', '--seq-len', '64', '--json'];

describe('fedkseed train / eval on a small folder', () => {
  it('train holds out at least one file at the default share and at 0.25', () => {
    const data = eightFiles();
    for (const share of [[], ['--held-out', '0.25']]) {
      const r = fedkseed('train', '--data', data, ...share, ...quick, '--out', join(work, `small${share.length}.json`));
      assert.equal(r.status, 0, r.stderr);
      const start = events(r.stdout)[0];
      assert.ok((start.heldOut as number) >= 1 && (start.train as number) >= 1, JSON.stringify(start));
    }
  });

  it('train --held-out 0 trains on everything without evaluating', () => {
    const r = fedkseed('train', '--data', eightFiles(), '--held-out', '0', ...quick, '--out', join(work, 'no-eval.json'));
    assert.equal(r.status, 0, r.stderr);
    const all = events(r.stdout);
    assert.deepEqual([all[0].train, all[0].heldOut], [8, 0]);
    assert.equal(all.filter((e) => e.event === 'eval').length, 0);
    const done = all.at(-1) as Event;
    assert.deepEqual([done.event, done.steps, done.heldOutBefore, done.heldOutAfter], ['done', 2, null, null]);
    const text = fedkseed(
      'train',
      '--data',
      eightFiles(),
      '--held-out',
      '0',
      '--steps',
      '1',
      '-k',
      '64',
      '--seq-len',
      '64',
      '--out',
      join(work, 'no-eval.json'),
      '--force',
    );
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stderr, /no held-out set/);
  });

  it("eval's default is train's held-out split: the same loss for the checkpoint train wrote", () => {
    const data = eightFiles();
    const checkpoint = join(work, 'small-ck.json');
    // The same --held-out for both; eval's --split is left at its default.
    const r = fedkseed('train', '--data', data, '--held-out', '0.5', '--steps', '6', '-k', '64', '--seq-len', '64', '--json', '--out', checkpoint);
    assert.equal(r.status, 0, r.stderr);
    const done = events(r.stdout).at(-1) as Event;
    const evaluated = fedkseed('eval', '--data', data, '--held-out', '0.5', '--seq-len', '64', '--checkpoint', checkpoint, '--json');
    assert.equal(evaluated.status, 0, evaluated.stderr);
    const out = JSON.parse(evaluated.stdout) as { loss: number; split: string; examples: number; checkpoint: string };
    // The same held-out examples; the loss agrees up to float32 rounding: train's weights came step by
    // step, eval's from base + the checkpoint's integer coefficients.
    assert.equal(out.examples, events(r.stdout)[0].heldOut);
    // The checkpoint holds the run's best evaluated point, whose loss train reported.
    const best = done.best as { step: number; loss: number };
    assert.ok(Math.abs(out.loss - best.loss) < 1e-5, `eval ${out.loss} vs train's best ${best.loss} (step ${best.step})`);
    assert.equal(out.split, 'held-out');
    assert.equal(out.checkpoint, checkpoint);

    // The text output says what was scored.
    const text = fedkseed('eval', '--data', data, '--held-out', '0.5', '--seq-len', '64', '--checkpoint', checkpoint);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /model .*tiny-code-lm.*model\.onnx/);
    assert.match(text.stdout, new RegExp(`checkpoint ${checkpoint.replace(/[.\\]/g, '\\$&')}`));
    assert.match(text.stdout, new RegExp(`data ${data.replace(/[.\\]/g, '\\$&')}`));
    assert.match(text.stdout, new RegExp(`split held-out .*: ${out.examples} of ${out.examples} examples`));
    assert.match(fedkseed('eval', '--data', data, '--seq-len', '64', '--split', 'all').stdout, /base model.*\n.*split all: 8 of 8 examples/);
  });

  it('a missing path is refused by option and path, without a stack trace', () => {
    const missing = join(work, 'no-such-thing');
    const cases: [string, string[]][] = [
      ['--data', ['eval', '--data', missing]],
      ['--data', ['train', '--data', missing]],
      ['--data', ['simulate', '--data', missing]],
      ['--model', ['eval', '--model', missing]],
      ['--tokenizer', ['eval', '--tokenizer', missing]],
      ['--checkpoint', ['eval', '--checkpoint', missing]],
      ['--checkpoint', ['export', '--checkpoint', missing, '--out', join(work, 'x.onnx')]],
      ['--from', ['train', '--from', missing]],
    ];
    for (const [option, args] of cases) {
      const r = fedkseed(...args);
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, new RegExp(`${option} ${missing.replace(/[.\\]/g, '\\$&')}: no such file or folder`), args.join(' '));
      assert.doesNotMatch(r.stderr, /ENOENT|\n\s+at /, args.join(' '));
    }
  });
});
