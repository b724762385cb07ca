// The tokenizer wrapper over the bundled model's tokenizer.json (byte-level BPE, 4096 ids,
// <|endoftext|> = 4095 as EOS, pad and BOS; see models/tiny-code-lm/MODEL_CARD.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordToExamples } from '../../trainer/data/examples';
import { ProblemLog } from '../../trainer/data/problems';
import { loadTokenizer, tokenIdsOnly } from '../../trainer/data/tokenizer';

const MODEL_DIR = join(import.meta.dirname, '../../models/tiny-code-lm');

test('special tokens and vocabulary size come from the tokenizer files', () => {
  const tok = loadTokenizer(MODEL_DIR);
  assert.equal(tok.eosId, 4095);
  assert.equal(tok.padId, 4095);
  assert.equal(tok.bosId, 4095);
  assert.equal(tok.vocabSize, 4096);
});

test('decode(encode(x)) === x on code, whitespace, CRLF and non-ASCII text', () => {
  const tok = loadTokenizer(join(MODEL_DIR, 'tokenizer.json'));
  const samples = [
    '',
    'def add(a, b):\n    return a + b\n',
    "'use strict';\r\nconst x = { a: 1 };\r\n",
    '   leading and trailing   ',
    'naïve café — 東京 🚀',
    'tab\tand\u0007bell',
  ];
  for (const s of samples) {
    const ids = tok.encode(s);
    assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize));
    assert.equal(tok.decode(ids), s);
  }
});

test('encode adds no special tokens, even when asked (the post-processor adds none)', () => {
  const tok = loadTokenizer(MODEL_DIR);
  assert.ok(!tok.encode('hello world').includes(tok.eosId as number));
  assert.deepEqual(tok.encode('hello world', { addSpecialTokens: true }), tok.encode('hello world'));
});

test('<|endoftext|> in text becomes the EOS id and can be skipped when decoding', () => {
  const tok = loadTokenizer(MODEL_DIR);
  const ids = tok.encode('a<|endoftext|>b');
  assert.equal(ids.filter((id) => id === tok.eosId).length, 1);
  assert.equal(tok.decode(ids), 'a<|endoftext|>b');
  assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'ab');
});

test('without tokenizer_config.json the EOS falls back to a known end token; a wrong override is an error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tok-'));
  try {
    copyFileSync(join(MODEL_DIR, 'tokenizer.json'), join(dir, 'tokenizer.json'));
    const tok = loadTokenizer(dir);
    assert.equal(tok.eosId, 4095);
    assert.equal(tok.padId, 4095);
    assert.equal(tok.bosId, undefined);
    assert.throws(() => loadTokenizer(dir, { eosToken: '</s>' }), /eos token "<\/s>" is not in the vocabulary/);
    writeFileSync(join(dir, 'tokenizer.json'), '{"model": ');
    assert.throws(() => loadTokenizer(dir), /tokenizer\.json: cannot read tokenizer file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a tokenizer without an EOS token loads; text examples ask for one, pre-tokenised data needs none', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tok-'));
  try {
    const json = {
      version: '1.0',
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: { type: 'Whitespace' },
      post_processor: null,
      decoder: null,
      model: { type: 'WordLevel', vocab: { hello: 0, world: 1, '[UNK]': 2 }, unk_token: '[UNK]' },
    };
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
    const tok = loadTokenizer(dir);
    assert.equal(tok.eosId, undefined);
    assert.equal(tok.padId, 0);
    assert.deepEqual(tok.encode('hello world'), [0, 1]);
    const log = new ProblemLog('strict');
    assert.throws(
      () => recordToExamples({ kind: 'text', id: 'a', group: '.', text: 'hello world', source: { file: 'a', line: 1 } }, { tokenizer: tok, seqLen: 8, log }),
      /text examples end with an EOS token, and .*tokenizer\.json has none \(set eos_token/,
    );
    const tokens = recordToExamples(
      { kind: 'tokens', id: 't', group: 'g', inputIds: [0, 1, 0], source: { file: 't', line: 1 } },
      { tokenizer: tok, seqLen: 8, log },
    );
    assert.deepEqual(Array.from(tokens[0].ids), [0, 1, 0]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("without any tokenizer: token ids only, the model's vocabulary, and text refused by name", () => {
  const ids = tokenIdsOnly(4096, 'model.onnx');
  assert.equal(ids.vocabSize, 4096);
  assert.equal(ids.eosId, undefined);
  assert.throws(
    () => ids.encode('x'),
    /no tokenizer for model\.onnx: text needs its tokenizer\.json \(pass --tokenizer\); pre-tokenised data works without one/,
  );
});
