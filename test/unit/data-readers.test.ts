// Dataset readers over the hand-made files in test/fixtures/data (line numbers refer to those files).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError, formatProblem } from '../../trainer/data/problems';
import { detectFormat, readAllRecords } from '../../trainer/data/readers';
import type { InstructionRecord, TextRecord, TokenRecord } from '../../trainer/data/records';

const FIX = join(import.meta.dirname, '../fixtures/data');
const at = (name: string) => join(FIX, name);

test('Dolly JSONL: good lines become records, every bad line is reported with its line number', async () => {
  const { records, problems } = await readAllRecords(at('dolly.jsonl'));
  const rs = records as InstructionRecord[];
  assert.deepEqual(
    rs.map((r) => [r.id, r.group, r.source.line]),
    [
      ['dolly.jsonl:1', 'open_qa', 1],
      ['dolly.jsonl:2', 'summarization', 2],
      ['dolly.jsonl:8', 'brainstorming', 8],
    ],
  );
  assert.equal(rs[1].input, 'Cats sleep a lot. They also eat.');
  assert.equal(rs[1].output, 'Cats sleep and eat.');
  // Line 5 is blank (not data); 3, 4, 6 and 7 are bad.
  assert.deepEqual(
    problems.map((p) => p.line),
    [3, 4, 6, 7],
  );
  assert.match(problems[0].message, /^invalid JSON/);
  assert.equal(problems[1].message, 'missing field "response"');
  assert.equal(problems[2].message, 'field "response" must be a string, got a number');
  assert.equal(problems[3].message, 'expected a JSON object, got an array');
  assert.equal(formatProblem(problems[1]), `${at('dolly.jsonl')}:4: missing field "response"`);
});

test("policy 'strict' throws at the first bad line, naming file:line", async () => {
  await assert.rejects(readAllRecords(at('dolly.jsonl'), { policy: 'strict' }), (err: unknown) => {
    assert.ok(err instanceof DataError);
    assert.equal(err.problem.line, 3);
    assert.ok(err.message.startsWith(`${at('dolly.jsonl')}:3: invalid JSON`));
    return true;
  });
});

test('Alpaca JSON array: elements keep their line numbers; missing input is empty; group from category or file', async () => {
  const { records, problems } = await readAllRecords(at('alpaca.json'));
  const rs = records as InstructionRecord[];
  assert.deepEqual(
    rs.map((r) => [r.id, r.input, r.output, r.group]),
    [
      ['alpaca.json:2', '2 and 3', '5', 'alpaca'],
      ['alpaca.json:7', '', 'Hello!', 'alpaca'],
      ['alpaca.json:11', '', 'positive', 'classification'],
    ],
  );
  assert.deepEqual(problems, [{ file: at('alpaca.json'), line: 8, message: 'missing field "output"' }]);
});

test('Alpaca JSONL: wrong field types are reported', async () => {
  const { records, problems } = await readAllRecords(at('alpaca.jsonl'));
  assert.equal(records.length, 1);
  assert.deepEqual(problems, [{ file: at('alpaca.jsonl'), line: 2, message: 'field "input" must be a string, got a number' }]);
});

test('Natural Instructions task: one record per instance, group = task, first output is the answer', async () => {
  const { records, problems } = await readAllRecords(at('ni/task001_demo_reverse.json'));
  const rs = records as InstructionRecord[];
  assert.deepEqual(
    rs.map((r) => [r.id, r.input, r.output, r.source.line]),
    [
      ['task001-1', 'red green blue', 'blue green red', 11],
      ['task001-2', 'one two', 'two one', 12],
      ['task001-5', 'up down', 'down up', 17],
    ],
  );
  assert.ok(rs.every((r) => r.group === 'task001_demo_reverse'));
  assert.equal(rs[0].instruction, 'Reverse the order of the words in the sentence.');
  assert.deepEqual(
    problems.map((p) => [p.line, p.message]),
    [
      [13, 'instance "output" must be a non-empty array of strings'],
      [14, 'instance "input" must be a string, got a number'],
    ],
  );
  const withExample = await readAllRecords(at('ni/task001_demo_reverse.json'), { positiveExamples: 1 });
  assert.equal(
    (withExample.records[0] as InstructionRecord).instruction,
    'Reverse the order of the words in the sentence.\n\nPositive Example 1 -\nInput: a b c\nOutput: c b a',
  );
});

test('a malformed JSON document is one problem at the line where scanning failed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'readers-'));
  try {
    const file = join(dir, 'task9_bad.json');
    writeFileSync(file, '{\n  "Definition": ["x"],\n  "Instances": [\n    {"id": "a", "input": "b", "output": ["c"]}\n    {"id": "d"}\n  ]\n}\n');
    const { records, problems } = await readAllRecords(file, { format: 'natural-instructions' });
    assert.equal(records.length, 0);
    assert.equal(problems.length, 1);
    assert.equal(problems[0].line, 5);
    assert.match(problems[0].message, /expected "," or "]"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pre-tokenised JSONL: labels and loss_mask become the same mask; bad ids and shapes are reported', async () => {
  const { records, problems } = await readAllRecords(at('pretokenized.jsonl'), { vocabSize: 4096 });
  const rs = records as TokenRecord[];
  assert.deepEqual(
    rs.map((r) => [r.id, r.group, r.inputIds, r.lossMask]),
    [
      ['pretokenized.jsonl:1', 'default', [5, 6, 7, 8], undefined],
      ['pretokenized.jsonl:2', 'g1', [1, 2, 3], [0, 1, 1]],
      ['custom-id', 'default', [1, 2, 3], [0, 0, 1]],
    ],
  );
  assert.deepEqual(
    problems.map((p) => [p.line, p.message]),
    [
      [4, '"input_ids" must be a non-empty array of integers'],
      [5, 'labels[1] must be -100 or equal to input_ids[1] (labels are unshifted)'],
      [6, 'give either "labels" or "loss_mask", not both'],
      [7, 'input_ids[0] = 4096 is outside the vocabulary [0, 4096)'],
    ],
  );
});

test('text files: default excludes, binary / oversized / non-UTF-8 files listed as skipped, group = top folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'readers-'));
  try {
    cpSync(at('code'), dir, { recursive: true });
    for (const sub of ['node_modules/dep', 'dist', '.git']) mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(join(dir, 'node_modules/dep/index.js'), 'module.exports = 1;\n');
    writeFileSync(join(dir, 'dist/bundle.js'), 'bundled();\n');
    writeFileSync(join(dir, '.git/config'), '[core]\n');
    writeFileSync(join(dir, 'pkg-b/blob.dat'), Buffer.from([0x41, 0x00, 0x42]));
    writeFileSync(join(dir, 'pkg-b/latin1.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    writeFileSync(join(dir, 'pkg-b/big.txt'), 'x'.repeat(200));
    const { records, skipped, problems } = await readAllRecords(dir, { maxFileBytes: 100 });
    const rs = records as TextRecord[];
    assert.deepEqual(
      rs.map((r) => [r.id, r.group]),
      [
        ['README.md', '.'],
        ['pkg-a/math_utils.py', 'pkg-a'],
        ['pkg-a/sub/deep.py', 'pkg-a'],
        ['pkg-b/index.js', 'pkg-b'],
      ],
    );
    assert.equal(rs[1].text, 'def add(a, b):\n    return a + b\n');
    assert.deepEqual(
      skipped.map((s) => [s.file, s.reason]),
      [
        [join(dir, 'pkg-b/big.txt'), 'larger than 100 bytes (200)'],
        [join(dir, 'pkg-b/blob.dat'), 'binary (contains NUL bytes)'],
        [join(dir, 'pkg-b/latin1.txt'), 'not valid UTF-8'],
      ],
    );
    assert.deepEqual(problems, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('text files: an exported model (its tokenizer.json, config.json) and .fedkseed/ are not data; the model folder is named as skipped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'readers-models-'));
  try {
    cpSync(at('code'), dir, { recursive: true });
    // What Export writes beside its model, inside the data folder (the workspace is the default dataset).
    mkdirSync(join(dir, 'fine-tuned'), { recursive: true });
    writeFileSync(join(dir, 'fine-tuned/model.onnx'), Buffer.from([0x08, 0x07, 0x00]));
    writeFileSync(join(dir, 'fine-tuned/tokenizer.json'), JSON.stringify({ model: { vocab: { a: 0, b: 1 } } }));
    writeFileSync(join(dir, 'fine-tuned/config.json'), '{"model_type": "gpt2"}\n');
    // A transformers.js repository: its model under onnx/, its tokenizer at its root.
    mkdirSync(join(dir, 'models/gpt2/onnx'), { recursive: true });
    writeFileSync(join(dir, 'models/gpt2/onnx/model_q4.onnx'), Buffer.from([0x08, 0x00]));
    writeFileSync(join(dir, 'models/gpt2/tokenizer.json'), '{"model": {}}\n');
    writeFileSync(join(dir, 'models/gpt2/README.md'), '# gpt2\n');
    // FedKSeed's working folder, even when an include pattern names dot folders.
    mkdirSync(join(dir, '.fedkseed/exports/local-step-6'), { recursive: true });
    writeFileSync(join(dir, '.fedkseed/exports/local-step-6/tokenizer.json'), '{}\n');
    for (const include of [undefined, ['**/*', '.fedkseed/**/*']]) {
      const { records, skipped } = await readAllRecords(dir, include ? { include } : {});
      assert.deepEqual(
        (records as TextRecord[]).map((r) => r.id),
        ['README.md', 'pkg-a/math_utils.py', 'pkg-a/sub/deep.py', 'pkg-b/index.js'],
        `include ${include?.join(' ') ?? '(none)'}`,
      );
      assert.deepEqual(
        skipped.map((s) => [s.file, s.reason]),
        [
          [join(dir, 'fine-tuned'), 'an ONNX model with its tokenizer and config, not training data'],
          [join(dir, 'models/gpt2'), 'an ONNX model with its tokenizer and config, not training data'],
        ],
      );
    }
    // A model at the root of the data: its companions are left out, the rest is still read.
    writeFileSync(join(dir, 'model.onnx'), Buffer.from([0x08, 0x00]));
    writeFileSync(join(dir, 'tokenizer.json'), '{}\n');
    const atRoot = await readAllRecords(dir);
    assert.ok(!(atRoot.records as TextRecord[]).some((r) => r.id === 'tokenizer.json'));
    assert.ok((atRoot.records as TextRecord[]).some((r) => r.id === 'README.md'));
    assert.ok(atRoot.skipped.some((s) => s.file === join(dir, 'tokenizer.json')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('format detection by extension and content, with an explicit override', async () => {
  assert.equal(await detectFormat(at('dolly.jsonl')), 'dolly');
  assert.equal(await detectFormat(at('alpaca.json')), 'alpaca');
  assert.equal(await detectFormat(at('alpaca.jsonl')), 'alpaca');
  assert.equal(await detectFormat(at('pretokenized.jsonl')), 'pretokenized');
  assert.equal(await detectFormat(at('ni/task001_demo_reverse.json')), 'natural-instructions');
  assert.equal(await detectFormat(at('ni')), 'natural-instructions');
  assert.equal(await detectFormat(at('code')), 'text');
  assert.equal(await detectFormat(at('code/pkg-a/math_utils.py')), 'text');
  // Read as Alpaca, the Dolly file has no "output" anywhere: every line is a problem, none is lost.
  const forced = await readAllRecords(at('dolly.jsonl'), { format: 'alpaca' });
  assert.equal(forced.records.length, 0);
  assert.equal(forced.problems.length, 7);
  const dir = mkdtempSync(join(tmpdir(), 'readers-'));
  try {
    writeFileSync(join(dir, 'odd.jsonl'), '{"prompt": "a", "completion": "b"}\n');
    await assert.rejects(detectFormat(join(dir, 'odd.jsonl')), /odd\.jsonl: cannot tell the dataset format .*keys: prompt, completion/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
