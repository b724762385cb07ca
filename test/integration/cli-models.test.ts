// The model argument as users give it: Optimum folders, transformers.js repositories with variants,
// Hugging Face cache ids, a model without a tokenizer for pre-tokenised data, `fedkseed inspect`, and the
// parameter count train and eval print.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { packageRoot } from '../../trainer/paths';
import { readBaseModel } from '../../cli/base-model';
import { openEngine } from '../../trainer/engine';
import { reference } from '../helpers/model-fixtures';

const root = packageRoot();
const work = mkdtempSync(join(tmpdir(), 'fedkseed-cli-models-'));
after(() => rmSync(work, { recursive: true, force: true }));
const FIX = join(root, 'test', 'fixtures', 'models');
const code = join(root, 'test', 'fixtures', 'data', 'code');

function fedkseed(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'cli', 'main.ts'), ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const pretokenized = join(work, 'tokens.jsonl');
writeFileSync(
  pretokenized,
  reference.batch.input_ids.map((ids, b) => JSON.stringify({ input_ids: ids.filter((_, t) => reference.batch.attention_mask[b][t] === 1) })).join('\n'),
);

describe('fedkseed with the models users have', () => {
  it('inspect lists the trainable set with its total; --json has the same; globs change it', () => {
    const text = fedkseed(['inspect', '--model', join(FIX, 'llama-folded')]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /embed\.weight\s+\[4096, 16\]\s+65,536\s+1\s+embedding \+ matmul weight \(tied: onnx::MatMul_\d+ holds it transposed\)/);
    assert.match(text.stdout, /total 70,224 parameters/);
    assert.match(text.stdout, /not trained: 3 tensors/);
    const json = JSON.parse(fedkseed(['inspect', '--model', join(FIX, 'optimum-gpt2'), '--json']).stdout) as {
      layout: string;
      variant: string;
      total: number;
      parameters: { name: string; count: number }[];
      cache: { useCacheBranch: string };
    };
    assert.equal(json.layout, 'optimum');
    assert.equal(json.total, reference.models['optimum-gpt2/decoder_model_merged'].parameters);
    assert.equal(
      json.parameters.reduce((n, p) => n + p.count, 0),
      json.total,
    );
    assert.equal(json.cache.useCacheBranch, 'use_cache_branch');
    const frozen = JSON.parse(fedkseed(['inspect', '--model', join(FIX, 'optimum-gpt2'), '--freeze', 'm.wte', 'm.wpe', '--json']).stdout) as { total: number };
    assert.equal(frozen.total, json.total - 4096 * 16 - 64 * 16);
  });

  it('eval on an Optimum folder and a transformers.js variant says what it picked and prints the real parameter count', () => {
    const opt = fedkseed(['eval', '--model', join(FIX, 'optimum-gpt2'), '--data', code, '--seq-len', '32', '--split', 'all', '--max-examples', '4']);
    assert.equal(opt.status, 0, opt.stderr);
    assert.match(opt.stdout, /decoder_model_merged\.onnx \(optimum folder .*variant fp32\); tokenizer .*optimum-gpt2[/\\]tokenizer\.json/);
    assert.match(opt.stdout, /\(73,152 parameters, cpu\)/);
    const q4 = JSON.parse(
      fedkseed(['eval', '--model', join(FIX, 'transformersjs-gpt2'), '--variant', 'q4', '--data', pretokenized, '--split', 'all', '--json']).stdout,
    ) as { model: string; variant: string; loss: number; tokens: number; parameters: number };
    assert.match(q4.model, /onnx[/\\]model_q4\.onnx$/);
    assert.equal(q4.variant, 'q4');
    assert.equal(q4.parameters, 73_152);
    assert.equal(q4.tokens, reference.models['transformersjs-gpt2/model_q4'].tokens);
    assert.ok(Math.abs(q4.loss - reference.models['transformersjs-gpt2/model_q4'].loss) < 1e-4, `${q4.loss}`);
    // The default --seq-len (128) fitted itself to the model's 64 positions above; a typed one is checked.
    const typed = fedkseed(['eval', '--model', join(FIX, 'transformersjs-gpt2'), '--data', pretokenized, '--seq-len', '128', '--split', 'all']);
    assert.equal(typed.status, 2, typed.stderr);
    assert.match(typed.stderr, /--seq-len 128 exceeds the model's 64 positions/);
  });

  it('pre-tokenised data needs only the model: no tokenizer file, no EOS; text data asks for the tokenizer', () => {
    const r = fedkseed(['eval', '--model', join(FIX, 'gpt2-no-past'), '--data', pretokenized, '--split', 'all', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { loss: number; tokens: number; accuracy: number | null; exactMatch: number | null; generated: number };
    assert.equal(out.tokens, reference.models['gpt2-no-past'].tokens);
    assert.ok(Math.abs(out.loss - reference.models['gpt2-no-past'].loss) < 1e-4);
    // Token ids alone: the top-1 accuracy is measured, the next line (text) is not.
    assert.ok(out.accuracy !== null && out.accuracy >= 0 && out.accuracy <= 1, `${out.accuracy}`);
    assert.equal(out.exactMatch, null);
    assert.equal(out.generated, 0);
    const bad = join(work, 'out-of-vocab.jsonl');
    writeFileSync(bad, `${JSON.stringify({ input_ids: [1, 2, 4096] })}\n${JSON.stringify({ input_ids: [1, 2, 3] })}\n`);
    const checked = fedkseed(['eval', '--model', join(FIX, 'gpt2-no-past'), '--data', bad, '--split', 'all', '--json']);
    assert.equal(checked.status, 0, checked.stderr);
    assert.match(checked.stdout, /input_ids\[2\] = 4096 is outside the vocabulary \[0, 4096\)/);
    const text = fedkseed(['eval', '--model', join(FIX, 'gpt2-no-past'), '--data', code, '--split', 'all']);
    assert.notEqual(text.status, 0);
    assert.match(text.stderr, /no tokenizer for .*model\.onnx: text needs its tokenizer\.json \(pass --tokenizer\)/);
  });

  it('train on a transformers.js repository exports the model with its tokenizer and config; the export reloads', () => {
    const out = join(work, 'tuned', 'model.onnx');
    const r = fedkseed([
      'train',
      '--model',
      join(FIX, 'transformersjs-gpt2'),
      '--variant',
      'quantized',
      '--data',
      code,
      '--seq-len',
      '32',
      '--batch-size',
      '2',
      '--steps',
      '3',
      '--held-out',
      '0',
      '-k',
      '8',
      '--out',
      join(work, 'ck.json'),
      '--export',
      out,
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /model_quantized\.onnx \(transformers\.js folder .*variant quantized\)/);
    assert.match(r.stderr, /73,152 parameters/);
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'config.json']) assert.ok(existsSync(join(work, 'tuned', f)), f);
    const again = fedkseed(['inspect', '--model', join(work, 'tuned'), '--json']);
    assert.equal((JSON.parse(again.stdout) as { total: number }).total, 73_152);
  });

  it('an org/name id is found in the Hugging Face cache under HF_HOME; an absent one is not downloaded', () => {
    const home = join(work, 'hf');
    const repo = join(home, 'hub', 'models--tiny-org--tiny-gpt2');
    const snapshot = join(repo, 'snapshots', 'abc123');
    mkdirSync(join(snapshot, 'onnx'), { recursive: true });
    mkdirSync(join(repo, 'refs'));
    writeFileSync(join(repo, 'refs', 'main'), 'abc123');
    for (const f of ['onnx/model.onnx', 'tokenizer.json', 'tokenizer_config.json', 'config.json']) {
      const blob = join(repo, 'blobs', f.replace('/', '_'));
      mkdirSync(join(repo, 'blobs'), { recursive: true });
      copyFileSync(join(FIX, 'transformersjs-gpt2', f), blob);
      symlinkSync(blob, join(snapshot, f));
    }
    const r = fedkseed(['eval', '--model', 'tiny-org/tiny-gpt2', '--data', pretokenized, '--split', 'all', '--json'], { HF_HOME: home });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(Math.abs((JSON.parse(r.stdout) as { loss: number }).loss - reference.models['transformersjs-gpt2/model'].loss) < 1e-4);
    const missing = fedkseed(['eval', '--model', 'tiny-org/absent', '--data', pretokenized], { HF_HOME: home });
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /nor is tiny-org\/absent in the Hugging Face cache .*download it first/);
  });

  it('a federation agrees on the model: the server reads variant and selection as the clients do, without a tokenizer', async () => {
    const path = join(FIX, 'transformersjs-gpt2');
    const select = { freeze: ['m.wte'] };
    const base = await readBaseModel(path, { variant: 'q4', select });
    const client = await openEngine({ model: path, variant: 'q4', select, threads: 1 });
    try {
      assert.equal(base.identity, client.model.identity);
      assert.equal(base.parameters, client.params.parameterCount);
      assert.equal(base.parameters, 73_152 - 4096 * 16);
    } finally {
      await client.close();
    }
    assert.notEqual((await readBaseModel(path, { variant: 'q4' })).identity, base.identity);
    assert.equal((await readBaseModel(join(FIX, 'gpt2-no-past'))).parameters, 73_152);
  });

  it('simulate passes the variant and the selection to every process: the replicas agree and rounds commit', () => {
    const out = join(work, 'sim');
    const r = fedkseed([
      'simulate',
      '--model',
      join(FIX, 'transformersjs-gpt2'),
      '--variant',
      'q4',
      '--freeze',
      'm.wte',
      '--data',
      code,
      '--seq-len',
      '32',
      '--clients',
      '2',
      '--rounds',
      '1',
      '--tau',
      '2',
      '-k',
      '16',
      '--batch-size',
      '2',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const done = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as { event: string; status: string; rounds: number; replicasIdentical: boolean };
    assert.equal(done.event, 'done');
    assert.equal(done.rounds, 1, r.stdout);
    assert.equal(done.replicasIdentical, true);
  });
});
