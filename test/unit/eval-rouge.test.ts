// Rouge-L with the semantics of the pltrdy `rouge` 1.0.1 package (see trainer/eval/rouge.ts).
// Each expected value is written as the package's formula F = 2·(P·R)/(P + R + 1e-8) with
// P = overlap / distinct hypothesis words and R = overlap / distinct reference words.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reconLcs, rougeL, rougeLScore, rougeSentences } from '../../trainer/eval/rouge';

const F = (p: number, r: number) => 2.0 * ((p * r) / (p + r + 1e-8));

test('sentences: split on ".", empty pieces dropped, whitespace collapsed, blank pieces kept as ""', () => {
  assert.deepEqual(rougeSentences('Hello  world. Bye.'), ['Hello world', 'Bye']);
  assert.deepEqual(rougeSentences(' . a'), ['', 'a']);
  assert.deepEqual(rougeSentences('...'), []);
  // Python's str.split() breaks on NBSP and U+001F but not on U+FEFF or U+200B.
  assert.deepEqual(rougeSentences('a\u00a0b\u001fc\ufeffd\u200be'), ['a b c\ufeffd\u200be']);
});

test('identical texts: P = R = 1', () => {
  // 3 distinct words each, LCS = all 3.
  assert.deepEqual(rougeLScore('the cat sat', 'the cat sat'), { p: 1, r: 1, f: F(1, 1) });
});

test('words are counted once: repeated hypothesis words do not lower precision', () => {
  // hyp words {the, cat} (n = 2), ref {the, cat} (m = 2), LCS of [the cat] and [the the cat] = {the, cat}.
  assert.deepEqual(rougeLScore('the the cat', 'the cat'), { p: 1, r: 1, f: F(1, 1) });
});

test('union LCS over hypothesis sentences (the example of the package docstring)', () => {
  // ref "w1 w2 w3 w4 w5"; hyp sentences c1 = "w1 w2 w6 w7 w8", c2 = "w1 w3 w8 w9 w5".
  // LCS(ref, c1) = w1 w2, LCS(ref, c2) = w1 w3 w5, union {w1, w2, w3, w5}: overlap 4.
  // m = 5, n = |{w1 w2 w6 w7 w8 w3 w9 w5}| = 8 → R = 4/5, P = 4/8.
  const s = rougeLScore('w1 w2 w6 w7 w8. w1 w3 w8 w9 w5', 'w1 w2 w3 w4 w5');
  assert.deepEqual(s, { p: 0.5, r: 0.8, f: F(0.5, 0.8) });
  assert.ok(Math.abs((s?.f ?? 0) - 0.6153846) < 1e-6);
});

test("the package's LCS tie-breaking decides which words enter the shared union", () => {
  // ref sentences r1 = "a b", r2 = "b"; hyp "b a". For (r1, hyp) both "a" and "b" are LCSs of
  // length 1; the package's backtrack moves along the hypothesis on ties and keeps "b".
  assert.deepEqual(reconLcs(['a', 'b'], ['b', 'a']), ['b']);
  // r2 adds "b" again: union {b}, overlap 1, m = n = 2 → P = R = 1/2. (Keeping "a" would give 1.)
  assert.deepEqual(rougeLScore('b a', 'a b. b'), { p: 0.5, r: 0.5, f: F(0.5, 0.5) });
});

test('case-sensitive, punctuation other than "." stays in the word', () => {
  // "Hello world." vs "hello   World": no word equal → overlap 0, F = 0.
  assert.deepEqual(rougeLScore('Hello world.', 'hello   World'), { p: 0, r: 0, f: 0 });
  // "yes," ≠ "yes": LCS = {it, is}, m = n = 3 → P = R = 2/3.
  assert.deepEqual(rougeLScore('yes, it is', 'yes it is'), { p: 2 / 3, r: 2 / 3, f: F(2 / 3, 2 / 3) });
});

test('a whitespace-only sentence contributes the word ""', () => {
  // hyp " . a" → sentences ["", "a"], words {"", a}: n = 2; ref "a": m = 1; overlap {a} = 1.
  // R = 1/1, P = 1/2.
  assert.deepEqual(rougeLScore(' . a', 'a'), { p: 0.5, r: 1, f: F(0.5, 1) });
});

test('empty hypothesis or reference: the package raises, the paper scores 0', () => {
  assert.equal(rougeLScore('', 'a b'), undefined);
  assert.equal(rougeLScore('...', 'a b'), undefined);
  assert.equal(rougeLScore('a b', ''), undefined);
  assert.equal(rougeL('', 'a b'), 0);
  assert.equal(rougeL('a b', '.'), 0);
  assert.equal(rougeL('a b', 'a c'), F(1 / 2, 1 / 2));
});
