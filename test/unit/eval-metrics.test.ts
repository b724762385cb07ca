// Properties of the held-out measures: top-1 accuracy, the next-line cut and its exact match, Rouge-L.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Top1Accumulator, top1Count } from '../../trainer/eval/accuracy';
import { exactLineMatch, nextLineCase } from '../../trainer/eval/next-line';
import { reconLcs, rougeL } from '../../trainer/eval/rouge';

const VOCAB = 7;

/** Logits [ids.length, VOCAB] whose argmax at t is predict(t). */
function logitsPredicting(n: number, predict: (t: number) => number): Float32Array {
  const l = new Float32Array(n * VOCAB).map((_, i) => ((i * 37) % 11) / 100);
  for (let t = 0; t < n; t++) l[t * VOCAB + predict(t)] = 5;
  return l;
}

test('a model that always predicts the target has accuracy 1; one that never does, 0', () => {
  const ids = [3, 1, 4, 1, 5, 6, 2, 6];
  const right = top1Count(
    logitsPredicting(ids.length, (t) => ids[Math.min(t + 1, ids.length - 1)]),
    ids,
  );
  assert.deepEqual(right, { correct: ids.length - 1, targets: ids.length - 1 });
  const wrong = top1Count(
    logitsPredicting(ids.length, (t) => (ids[Math.min(t + 1, ids.length - 1)] + 1) % VOCAB),
    ids,
  );
  assert.deepEqual(wrong, { correct: 0, targets: ids.length - 1 });
  const acc = new Top1Accumulator();
  acc.add(right);
  acc.add(wrong);
  assert.equal(acc.accuracy, 0.5);
});

test('accuracy counts only the loss targets, and is undefined (NaN) without any', () => {
  const ids = [1, 2, 3, 4];
  const mask = [0, 0, 1, 1];
  const l = logitsPredicting(4, (t) => (t === 1 ? 3 : 0));
  assert.deepEqual(top1Count(l, ids, mask), { correct: 1, targets: 2 });
  assert.deepEqual(top1Count(new Float32Array(VOCAB), [5]), { correct: 0, targets: 0 });
  assert.ok(Number.isNaN(new Top1Accumulator().accuracy));
  assert.throws(() => new Top1Accumulator().add({ correct: 3, targets: 2 }), RangeError);
});

test('the next-line case: a whole non-blank line past the middle, the prompt ending at its indentation', () => {
  const text = 'function f(a) {\n  const b = a + 1;\n\n  return b * 2;\n}\nconst x = 1;\n';
  const c = nextLineCase(text);
  assert.ok(c);
  assert.ok(text.startsWith(c.prompt));
  assert.ok(c.prompt.length > text.length / 2);
  const rest = text.slice(c.prompt.length);
  assert.equal(rest.slice(0, rest.indexOf('\n')).trimEnd(), c.target);
  assert.notEqual(c.target.trim(), '');
  assert.equal(nextLineCase('no line break at all'), null);
  // The last line may be cut by the window: it is not taken.
  assert.equal(nextLineCase('a\nb\nunfinished li'), null);
});

test('exact match: equal up to trailing whitespace, on the first line of the completion', () => {
  assert.ok(exactLineMatch('return b * 2;  \n}', 'return b * 2;'));
  assert.ok(!exactLineMatch('return b * 3;', 'return b * 2;'));
  assert.ok(!exactLineMatch(' return b * 2;', 'return b * 2;'));
});

test('Rouge-L: 1 for identical texts, 0 for disjoint ones, and the LCS length is symmetric', () => {
  const a = 'the quick brown fox jumps over the lazy dog';
  assert.ok(Math.abs(rougeL(a, a) - 1) < 1e-6);
  assert.equal(rougeL('alpha beta gamma', 'delta epsilon'), 0);
  const words = (s: string) => s.split(' ');
  for (const [x, y] of [
    [a, 'a quick fox over the dog'],
    ['x y z x y', 'y x y z'],
    ['one two', 'three'],
  ]) {
    assert.equal(reconLcs(words(x), words(y)).length, reconLcs(words(y), words(x)).length);
    const r = rougeL(x, y);
    assert.ok(r >= 0 && r <= 1);
  }
});
