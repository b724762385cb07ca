// Model layouts: a file, a plain folder, an Optimum export folder, a transformers.js repository, a
// Hugging Face cache folder and an org/name id in the local cache, each with its tokenizer and config
// found where the layout keeps them, and a variant chosen among the files.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { describeLocated, hubCache, locateModel, LocateError } from '../../contracts/node/model-location';
import { resolveModelPaths } from '../../trainer/paths';

const FIX = resolve('test/fixtures/models');
const OPTIMUM = join(FIX, 'optimum-gpt2');
const TJS = join(FIX, 'transformersjs-gpt2');
const dir = mkdtempSync(join(tmpdir(), 'fedkseed-locate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('an Optimum export folder: the merged decoder by default, tokenizer and config at its root', () => {
  const l = locateModel(OPTIMUM);
  assert.equal(l.layout, 'optimum');
  assert.equal(l.model, join(OPTIMUM, 'decoder_model_merged.onnx'));
  assert.equal(l.variant, 'fp32');
  assert.deepEqual(
    l.choices.map((c) => c.file.slice(OPTIMUM.length + 1)),
    ['decoder_model_merged.onnx', 'decoder_with_past_model.onnx', 'decoder_model.onnx'],
  );
  assert.equal(l.tokenizer, join(OPTIMUM, 'tokenizer.json'));
  assert.equal(l.tokenizerConfig, join(OPTIMUM, 'tokenizer_config.json'));
  assert.equal(l.config, join(OPTIMUM, 'config.json'));
  assert.match(describeLocated(l), /decoder_model_merged\.onnx \(optimum folder .*variant fp32\); tokenizer .*tokenizer\.json/);
});

test('a transformers.js repository: onnx/model.onnx by default, variants by name, tokenizer at the root', () => {
  const l = locateModel(TJS);
  assert.equal(l.layout, 'transformers.js');
  assert.equal(l.model, join(TJS, 'onnx', 'model.onnx'));
  assert.equal(l.tokenizer, join(TJS, 'tokenizer.json'));
  assert.equal(l.config, join(TJS, 'config.json'));
  assert.deepEqual(
    l.choices.map((c) => c.variant),
    ['fp32', 'fp16', 'quantized', 'q4'],
  );
  for (const [variant, file] of [
    ['fp16', 'model_fp16.onnx'],
    ['quantized', 'model_quantized.onnx'],
    ['q8', 'model_quantized.onnx'],
    ['Q4', 'model_q4.onnx'],
    ['float32', 'model.onnx'],
  ]) {
    assert.equal(locateModel(TJS, { variant }).model, join(TJS, 'onnx', file), variant);
  }
  assert.throws(
    () => locateModel(TJS, { variant: 'bnb4' }),
    (e: Error) => e instanceof LocateError && /no bnb4 variant .* there are: fp32, fp16, quantized, q4/.test(e.message),
  );
  // Pointing at onnx/ or at a file inside it finds the tokenizer one level up.
  assert.equal(locateModel(join(TJS, 'onnx')).tokenizer, join(TJS, 'tokenizer.json'));
  const file = locateModel(join(TJS, 'onnx', 'model_q4.onnx'));
  assert.equal(file.layout, 'file');
  assert.equal(file.variant, 'q4');
  assert.equal(file.tokenizer, join(TJS, 'tokenizer.json'));
  assert.throws(() => locateModel(join(TJS, 'onnx', 'model.onnx'), { variant: 'fp16' }), /chooses among the files of a folder/);
});

test('without an fp32 file the first variant is taken, and the choice says so', () => {
  const repo = join(dir, 'half-only');
  mkdirSync(join(repo, 'onnx'), { recursive: true });
  copyFileSync(join(TJS, 'onnx', 'model_fp16.onnx'), join(repo, 'onnx', 'model_fp16.onnx'));
  copyFileSync(join(TJS, 'onnx', 'model_q4.onnx'), join(repo, 'onnx', 'model_q4.onnx'));
  const l = locateModel(repo);
  assert.equal(l.variant, 'fp16');
  assert.deepEqual(l.notes, ['no fp32 file; took fp16']);
  assert.equal(l.tokenizer, null);
});

test('a plain folder with model.onnx, the bundled default, an explicit tokenizer', () => {
  const paths = resolveModelPaths();
  assert.match(paths.model, /tiny-code-lm[/\\]model\.onnx$/);
  const l = locateModel(join(FIX, 'gpt2-no-past'), { tokenizer: join(OPTIMUM, 'tokenizer.json') });
  assert.equal(l.layout, 'folder');
  assert.equal(l.tokenizer, join(OPTIMUM, 'tokenizer.json'));
  assert.equal(locateModel(join(FIX, 'gpt2-no-past')).tokenizer, null);
  assert.equal(locateModel(join(FIX, 'gpt2-no-past'), { tokenizer: OPTIMUM }).tokenizer, join(OPTIMUM, 'tokenizer.json'));
  assert.throws(() => locateModel(join(FIX, 'gpt2-no-past'), { tokenizer: join(dir, 'none.json') }), /tokenizer not found/);
  // A folder with one oddly named model takes it; with several it asks for the file.
  const odd = join(dir, 'odd');
  mkdirSync(odd);
  copyFileSync(join(FIX, 'gpt2-no-past', 'model.onnx'), join(odd, 'tiny.onnx'));
  assert.equal(locateModel(odd).model, join(odd, 'tiny.onnx'));
  copyFileSync(join(FIX, 'gpt2-no-past', 'model.onnx'), join(odd, 'other.onnx'));
  assert.throws(() => locateModel(odd), /several \.onnx files .*other\.onnx, tiny\.onnx/);
});

/** A hub cache as huggingface_hub writes it: blobs, a snapshot of symlinks, refs/main. */
function fakeHub(home: string, id: string, files: Record<string, string>): string {
  const repo = join(home, 'hub', `models--${id.replace('/', '--')}`);
  const revision = '0123456789abcdef0123456789abcdef01234567';
  const snapshot = join(repo, 'snapshots', revision);
  mkdirSync(join(repo, 'blobs'), { recursive: true });
  mkdirSync(join(repo, 'refs'), { recursive: true });
  writeFileSync(join(repo, 'refs', 'main'), revision);
  let k = 0;
  for (const [name, source] of Object.entries(files)) {
    const blob = join(repo, 'blobs', `blob${k++}`);
    copyFileSync(source, blob);
    mkdirSync(join(snapshot, name, '..'), { recursive: true });
    symlinkSync(blob, join(snapshot, name));
  }
  return repo;
}

test('the Hugging Face cache: an org/name id under HF_HOME, or the cache folder itself; nothing is downloaded', () => {
  const home = join(dir, 'hf');
  const repo = fakeHub(home, 'tiny-org/tiny-gpt2', {
    'onnx/model.onnx': join(TJS, 'onnx', 'model.onnx'),
    'onnx/model_quantized.onnx': join(TJS, 'onnx', 'model_quantized.onnx'),
    'tokenizer.json': join(TJS, 'tokenizer.json'),
    'tokenizer_config.json': join(TJS, 'tokenizer_config.json'),
    'config.json': join(TJS, 'config.json'),
  });
  const env = { HF_HOME: home };
  assert.equal(hubCache(env), join(home, 'hub'));
  assert.equal(hubCache({ HF_HUB_CACHE: join(dir, 'elsewhere'), HF_HOME: home }), join(dir, 'elsewhere'));
  const byId = locateModel('tiny-org/tiny-gpt2', { env });
  const snapshot = join(repo, 'snapshots', '0123456789abcdef0123456789abcdef01234567');
  assert.equal(byId.layout, 'hf-cache');
  assert.equal(byId.repo, 'tiny-org/tiny-gpt2');
  assert.equal(byId.model, join(snapshot, 'onnx', 'model.onnx'));
  assert.equal(byId.tokenizer, join(snapshot, 'tokenizer.json'));
  assert.equal(byId.config, join(snapshot, 'config.json'));
  assert.equal(locateModel('tiny-org/tiny-gpt2', { env, variant: 'q8' }).model, join(snapshot, 'onnx', 'model_quantized.onnx'));
  assert.equal(locateModel(repo).model, byId.model);
  assert.match(describeLocated(byId), /Hugging Face cache tiny-org\/tiny-gpt2@0123456789ab/);
  assert.throws(
    () => locateModel('tiny-org/absent', { env }),
    (e: Error) => /nor is tiny-org\/absent in the Hugging Face cache .*hub.*download it first/.test(e.message),
  );
  assert.throws(() => locateModel(join(dir, 'no', 'such', 'thing')), /model file not found: .*thing$/);
});
