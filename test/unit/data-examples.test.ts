// Records → examples. A one-character-per-token stand-in tokenizer keeps every expected id
// computable by hand; the last test uses the bundled model's real tokenizer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildExamples, formatPrompt, recordToExamples, targetCount, windowStarts } from '../../trainer/data/examples';
import { ProblemLog } from '../../trainer/data/problems';
import type { InstructionRecord, TextRecord, TokenRecord } from '../../trainer/data/records';
import { type TextTokenizer, loadTokenizer } from '../../trainer/data/tokenizer';

const EOS = 0;
const chars: TextTokenizer = {
  encode: (text) => Array.from(text, (c) => c.charCodeAt(0)),
  decode: (ids) => String.fromCharCode(...Array.from(ids)),
  eosId: EOS,
  padId: EOS,
  bosId: undefined,
  vocabSize: 256,
};
const codes = (s: string) => Array.from(s, (c) => c.charCodeAt(0));

const instruction = (output: string, input = ''): InstructionRecord => ({
  kind: 'instruction',
  id: 'd.jsonl:1',
  group: 'qa',
  instruction: 'I',
  input,
  output,
  source: { file: 'd.jsonl', line: 1 },
});

test('the Alpaca prompt, with and without an input', () => {
  assert.equal(
    formatPrompt('Add.', ''),
    'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nAdd.\n\n### Response:\n',
  );
  assert.equal(
    formatPrompt('Add.', '2 3'),
    'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nAdd.\n\n### Input:\n2 3\n\n### Response:\n',
  );
});

test('instruction examples: prompt + response + EOS, loss only on response and EOS', () => {
  const log = new ProblemLog();
  const prompt = codes(formatPrompt('I', ''));
  const P = prompt.length;
  const [e] = recordToExamples(instruction('ab'), { tokenizer: chars, seqLen: 512, log });
  assert.deepEqual(Array.from(e.ids), [...prompt, 97, 98, EOS]);
  assert.deepEqual(Array.from(e.lossMask ?? []), [...new Array(P).fill(0), 1, 1, 1]);
  assert.equal(e.promptLength, P);
  assert.equal(e.reference, 'ab');
  assert.equal(e.group, 'qa');
  assert.equal(e.splitKey, 'd.jsonl:1');
  // Targets: 'a', 'b' and EOS.
  assert.equal(targetCount(e), 3);
});

test('a long answer is cut at seqLen (EOS first); a prompt that leaves no room is reported', () => {
  const log = new ProblemLog();
  const P = formatPrompt('I', '').length;
  const [cut] = recordToExamples(instruction('abc'), { tokenizer: chars, seqLen: P + 2, log });
  // P prompt tokens, then 'a', 'b'; 'c' and EOS do not fit.
  assert.deepEqual(Array.from(cut.ids.subarray(P)), [97, 98]);
  assert.equal(targetCount(cut), 2);
  assert.deepEqual(recordToExamples(instruction('abc'), { tokenizer: chars, seqLen: P, log }), []);
  assert.deepEqual(log.problems, [{ file: 'd.jsonl', line: 1, message: `prompt is ${P} tokens, no room for the response within seqLen ${P}` }]);
});

test('window starts: stride seqLen − 1, the last window needs two tokens', () => {
  assert.deepEqual(windowStarts(1, 4), []);
  assert.deepEqual(windowStarts(2, 4), [0]);
  assert.deepEqual(windowStarts(4, 4), [0]);
  // 5 tokens, windows [0,4) and [3,5).
  assert.deepEqual(windowStarts(5, 4), [0, 3]);
  assert.throws(() => windowStarts(5, 1), RangeError);
});

test('text files: EOS appended, windows overlap by one token, every next-token prediction made once', () => {
  const record: TextRecord = { kind: 'text', id: 'pkg/f.py', group: 'pkg', text: 'abcdef', source: { file: '/r/pkg/f.py', line: 0 } };
  const ex = recordToExamples(record, { tokenizer: chars, seqLen: 3, log: new ProblemLog() });
  // Tokens a b c d e f EOS (7); windows start at 0, 2, 4.
  assert.deepEqual(
    ex.map((e) => Array.from(e.ids)),
    [
      [97, 98, 99],
      [99, 100, 101],
      [101, 102, EOS],
    ],
  );
  assert.deepEqual(
    ex.map((e) => [e.id, e.splitKey, e.group, e.lossMask]),
    [
      ['pkg/f.py#0', 'pkg/f.py', 'pkg', undefined],
      ['pkg/f.py#1', 'pkg/f.py', 'pkg', undefined],
      ['pkg/f.py#2', 'pkg/f.py', 'pkg', undefined],
    ],
  );
  // 7 tokens → 6 predictions, 2 per window.
  assert.equal(
    ex.reduce((n, e) => n + targetCount(e), 0),
    6,
  );
});

test('pre-tokenised records keep their mask through windowing; a 1-token sequence is reported', async () => {
  const log = new ProblemLog();
  const rec = (inputIds: number[], lossMask?: number[]): TokenRecord => ({
    kind: 'tokens',
    id: 'p:1',
    group: 'g',
    inputIds,
    ...(lossMask ? { lossMask } : {}),
    source: { file: 'p.jsonl', line: 1 },
  });
  const ex = await buildExamples([rec([1, 2, 3, 4], [0, 0, 1, 1]), rec([9])], { tokenizer: chars, seqLen: 3, log });
  assert.deepEqual(
    ex.map((e) => [Array.from(e.ids), Array.from(e.lossMask ?? [])]),
    [
      [
        [1, 2, 3],
        [0, 0, 1],
      ],
      [
        [3, 4],
        [1, 1],
      ],
    ],
  );
  // Targets: token 3 in window 0 (mask[2] = 1), token 4 in window 1 (position 1).
  assert.equal(targetCount(ex[0]) + targetCount(ex[1]), 2);
  assert.deepEqual(log.problems, [{ file: 'p.jsonl', line: 1, message: 'sequence has fewer than 2 tokens: nothing to predict' }]);
});

test('with the real tokenizer, the prompt tokens decode back to the prompt and the answer follows', () => {
  const tok = loadTokenizer(join(import.meta.dirname, '../../models/tiny-code-lm'));
  const [e] = recordToExamples(instruction('return x'), { tokenizer: tok, seqLen: 256, log: new ProblemLog() });
  const P = e.promptLength ?? -1;
  assert.equal(tok.decode(e.ids.subarray(0, P)), formatPrompt('I', ''));
  assert.equal(tok.decode(e.ids.subarray(P, e.ids.length - 1)), 'return x');
  assert.equal(e.ids[e.ids.length - 1], tok.eosId);
});
