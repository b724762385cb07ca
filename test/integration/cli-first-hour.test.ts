// A newcomer's first hour with the `fedkseed` command, run as they run it (real processes on the
// bundled model): nothing they made is replaced without a word, every error says the fix in a line or
// a few, and the output spells each figure one way.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { packageRoot } from '../../trainer/paths';

const root = packageRoot();
const work = mkdtempSync(join(tmpdir(), 'fedkseed-first-hour-'));
after(() => rmSync(work, { recursive: true, force: true }));
const code = join(root, 'test', 'fixtures', 'data', 'code');
const tiny = join(root, 'models', 'tiny-code-lm');

function fedkseed(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'cli', 'main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// --keep last: these tests count the steps a checkpoint holds, whichever point evaluated best.
const quick = ['--data', code, '--seq-len', '32', '--batch-size', '1', '-k', '16', '--eval-every', '0', '--eval-examples', '2', '--keep', 'last'];

describe('outputs are not replaced without a word', () => {
  it('train refuses to replace an existing checkpoint unless it continues it (--from) or --force', () => {
    const ck = join(work, 'ck.json');
    const first = fedkseed('train', ...quick, '--steps', '3', '--out', ck);
    assert.equal(first.status, 0, first.stderr);
    const before = readFileSync(ck, 'utf8');

    const again = fedkseed('train', ...quick, '--steps', '2', '--out', ck);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /already exists \(a 3-step checkpoint, K=16\)/);
    assert.match(again.stderr, /--out <other file>/);
    assert.match(again.stderr, /--force/);
    assert.equal(readFileSync(ck, 'utf8'), before, 'the checkpoint is untouched');

    // Continuing the same run writes where it read.
    const resumed = fedkseed('train', ...quick, '--steps', '2', '--from', ck, '--out', ck, '--json');
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.equal((JSON.parse(readFileSync(ck, 'utf8')) as { steps: number }).steps, 5);

    const forced = fedkseed('train', ...quick, '--steps', '2', '--out', ck, '--force', '--json');
    assert.equal(forced.status, 0, forced.stderr);
    assert.equal((JSON.parse(readFileSync(ck, 'utf8')) as { steps: number }).steps, 2);
  });

  it("export refuses to write beside another model's config.json, and replaces it with --force, saying so", () => {
    const ck = join(work, 'export-ck.json');
    assert.equal(fedkseed('train', ...quick, '--steps', '2', '--out', ck, '--json').status, 0);
    const folder = join(work, 'mine');
    mkdirSync(folder);
    const foreign = JSON.stringify({ app: 'my own settings' });
    writeFileSync(join(folder, 'config.json'), foreign);
    const out = join(folder, 'model.onnx');

    const refused = fedkseed('export', '--checkpoint', ck, '--out', out);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /config\.json of another model/);
    assert.match(refused.stderr, /--force/);
    assert.equal(readFileSync(join(folder, 'config.json'), 'utf8'), foreign);
    assert.ok(!existsSync(out), 'nothing was written');

    const forced = fedkseed('export', '--checkpoint', ck, '--out', out, '--force');
    assert.equal(forced.status, 0, forced.stderr);
    assert.match(forced.stderr, /replaced config\.json/);
    assert.deepEqual(readFileSync(join(folder, 'config.json')), readFileSync(join(tiny, 'config.json')));

    // A folder already holding this model's own files is no conflict.
    const again = fedkseed('export', '--checkpoint', ck, '--out', join(folder, 'model-2.onnx'));
    assert.equal(again.status, 0, again.stderr);
  });

  it('the .fedkseed folder a store is created in holds a .gitignore of *', () => {
    const store = join(work, 'project', '.fedkseed', 'server');
    const r = fedkseed('tokens', 'create', '--store', store, '--label', 'alice');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      readFileSync(join(work, 'project', '.fedkseed', '.gitignore'), 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .join(),
      '*',
    );
  });
});

describe('errors say the fix in a few lines', () => {
  it('an empty folder and a folder of binary files: one error listing what was skipped and why', () => {
    const empty = join(work, 'empty');
    mkdirSync(empty);
    const r1 = fedkseed('train', '--data', empty, '--steps', '2', '--out', join(work, 'never.json'));
    assert.notEqual(r1.status, 0);
    assert.match(r1.stderr, /no examples in .*empty: it holds no files/);
    assert.doesNotMatch(r1.stderr, /no held-out set|0 training/, 'no contradictory lines before the error');

    const binary = join(work, 'binary');
    mkdirSync(binary);
    writeFileSync(join(binary, 'a.dat'), Buffer.from([1, 0, 2, 0, 3]));
    writeFileSync(join(binary, 'b.txt'), Buffer.from([0x68, 0, 0x69]));
    writeFileSync(join(binary, 'empty.txt'), '');
    copyFileSync(join(tiny, 'model.onnx'), join(binary, 'model.onnx'));
    const r2 = fedkseed('train', '--data', binary, '--steps', '2', '--out', join(work, 'never.json'));
    assert.notEqual(r2.status, 0);
    const error = r2.stderr.slice(r2.stderr.indexOf('fedkseed:'));
    assert.match(error, /3 files skipped, 1 file left out by the default excludes/);
    assert.match(error, /2 binary \(contains NUL bytes\): a\.dat, b\.txt/);
    assert.match(error, /1 empty: empty\.txt/);
    assert.match(error, /1 binary, build output or lock files \(default excludes\): model\.onnx/);
    assert.doesNotMatch(r2.stderr, /no held-out set|0 training/);
    assert.ok(!existsSync(join(work, 'never.json')));

    // simulate (code files first, then every text file) says the same.
    const r3 = fedkseed('simulate', '--data', binary, '--rounds', '1', '--out', join(work, 'never-run'));
    assert.notEqual(r3.status, 0);
    assert.match(r3.stderr, /no examples in .*binary: 3 files skipped[\s\S]*2 binary \(contains NUL bytes\): a\.dat, b\.txt/);
  });

  it('--steps 0 prints the one-line error and where help is, not the whole help', () => {
    const r = fedkseed('train', '--steps', '0');
    assert.notEqual(r.status, 0);
    const lines = r.stderr.trim().split('\n');
    assert.ok(lines.length <= 2, r.stderr);
    assert.match(lines[0], /--steps .*'0' is invalid.*positive integer/);
    assert.match(r.stderr, /fedkseed train --help/);
    assert.doesNotMatch(r.stderr, /Usage:/);
  });

  it('a port in use names the fix and creates no store', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const store = join(work, 'port-store');
      // Asynchronous: the port is held by this process, which must stay responsive.
      const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'cli', 'main.ts'), 'server', '--port', String(port), '--store', store], {
        cwd: root,
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const status = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      assert.notEqual(status, 0);
      assert.match(
        stderr,
        new RegExp(`port 127\\.0\\.0\\.1:${port} is already in use \\(EADDRINUSE\\); pass another port \\(--port ${port + 1}\\) or --port 0 for any free one`),
      );
      assert.ok(!existsSync(store), 'no store folder was created');
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  it('a safetensors folder points to optimum-cli; a text file is not an ONNX model, not "corrupt"', () => {
    const hf = join(work, 'hf-model');
    mkdirSync(hf);
    writeFileSync(join(hf, 'config.json'), '{"model_type":"gpt2"}');
    writeFileSync(join(hf, 'model.safetensors'), Buffer.alloc(64, 1));
    const r1 = fedkseed('eval', '--model', hf, '--data', code);
    assert.notEqual(r1.status, 0);
    assert.ok(r1.stderr.includes(`optimum-cli export onnx --model ${hf} `), r1.stderr);

    const text = join(work, 'notes.txt');
    writeFileSync(text, 'these are my notes, not a model\n');
    const r2 = fedkseed('eval', '--model', text, '--data', code);
    assert.notEqual(r2.status, 0);
    assert.match(r2.stderr, /notes\.txt: a text file, not an ONNX model/);
    assert.doesNotMatch(r2.stderr, /corrupt/);
  });
});

describe('one spelling of each figure', () => {
  it('eval names the model once and prints top-1 as a percentage, as train does', () => {
    const r = fedkseed('eval', '--data', code, '--seq-len', '32', '--max-examples', '2', '--generation-examples', '1');
    assert.equal(r.status, 0, r.stderr);
    const all = `${r.stderr}\n${r.stdout}`;
    assert.equal(all.split('\n').filter((l) => /^model /.test(l)).length, 1, all);
    assert.match(r.stdout, /top-1 \d+\.\d%/);
    assert.doesNotMatch(r.stdout, /top-1 accuracy/);
  });

  it('no help line gives two defaults', () => {
    const commands = [
      ['eval'],
      ['train'],
      ['export'],
      ['inspect'],
      ['server'],
      ['server', 'backup'],
      ['server', 'restore'],
      ['server', 'repair'],
      ['client'],
      ['simulate'],
      ['tokens', 'create'],
      ['tokens', 'list'],
    ];
    for (const b of ['engine', 'generate', 'completions', 'memory', 'federation', 'study']) commands.push(['bench', b]);
    for (const c of commands) {
      const r = fedkseed(...c, '--help');
      assert.equal(r.status, 0);
      // An option's entry runs from its flags to the next one (commander wraps long descriptions).
      const entries = r.stdout.split(/\n(?= {2}-)/);
      for (const e of entries) assert.ok((e.match(/default/g) ?? []).length <= 1, `${c.join(' ')}: ${e}`);
    }
  });

  it('tokens list has a header row; one token is "1 token"', async () => {
    const store = join(work, 'tokens-store');
    assert.equal(fedkseed('tokens', 'create', '--store', store, '--label', 'bob', '--client-id', 'bob').status, 0);
    // A server gives the store its federation, which a backup needs.
    const server = spawn(process.execPath, ['--import', 'tsx', join(root, 'cli', 'main.ts'), 'server', '--port', '0', '--store', store], { cwd: root });
    await new Promise<void>((resolve) => server.stdout.on('data', (d: Buffer) => /listening/.test(d.toString()) && resolve()));
    server.kill('SIGTERM');
    await new Promise((resolve) => server.on('exit', resolve));
    const listed = fedkseed('tokens', 'list', '--store', store);
    assert.equal(listed.status, 0, listed.stderr);
    const [header, row] = listed.stdout.trim().split('\n');
    assert.match(header, /^id\s+created\s+client id\s+label$/);
    assert.match(row, /^[0-9a-f]{16}\s+\S+\s+bob\s+bob$/);
    const backup = fedkseed('server', 'backup', join(work, 'tokens.backup'), '--store', store);
    assert.equal(backup.status, 0, backup.stderr);
    assert.match(backup.stderr, /\b1 token\b/);
    assert.doesNotMatch(backup.stderr, /\b1 tokens\b/);
  });
});

describe('hints run as typed', () => {
  it('run through node bin/fedkseed.js from another folder, the export hint names that command, not a bare fedkseed', () => {
    const ck = join(work, 'hint-ck.json');
    const r = spawnSync(process.execPath, [join(root, 'bin', 'fedkseed.js'), 'train', ...quick, '--steps', '2', '--out', ck], {
      cwd: work,
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const hint = r.stderr.split('\n').find((l) => /export the model:/.test(l));
    assert.ok(hint, r.stderr);
    assert.match(hint, /export the model: node \S*bin\/fedkseed\.js export --checkpoint /);
  });

  it('run through npx in the package folder, the hint is npx fedkseed', () => {
    const r = spawnSync('npx', ['--no-install', 'fedkseed', 'train', '--steps', '0'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /\(npx fedkseed train --help lists the options\)/);
  });
});
