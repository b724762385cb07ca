// The choice of the next token and where a suggestion ends: properties that hold for any logits and text.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { argmaxRow } from '../../trainer/model/generate';
import { nucleus, tokenChooser } from '../../trainer/complete/sampling';
import { cursorIndent, stopIndex } from '../../trainer/complete/stops';

const logitsOf = (...rows: number[][]): Float32Array => Float32Array.from(rows.flat());

test('greedy chooses the argmax of each row', () => {
  const choose = tokenChooser({ mode: 'greedy' });
  const l = logitsOf([0, 3, 1], [5, -1, 4]);
  assert.equal(choose(l, 0, 3), 1);
  assert.equal(choose(l, 1, 3), 0);
});

test('the nucleus holds the most likely tokens whose mass reaches top-p, renormalised', () => {
  const l = logitsOf([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
  const { ids, probs } = nucleus(l, 0, 4, 1, 0.79);
  assert.deepEqual(ids, [0, 1]);
  assert.ok(Math.abs(probs[0] - 0.5 / 0.8) < 1e-6 && Math.abs(probs[1] - 0.3 / 0.8) < 1e-6);
  assert.deepEqual(nucleus(l, 0, 4, 1, 1).ids, [0, 1, 2, 3]);
  // A low temperature concentrates the mass on the argmax.
  assert.deepEqual(nucleus(l, 0, 4, 0.01, 0.99).ids, [0]);
});

test('sampling draws only from the nucleus, is repeatable from its seed, and follows the probabilities', () => {
  const l = logitsOf([Math.log(0.6), Math.log(0.3), Math.log(0.1)]);
  const draw = (seed: number) => {
    const choose = tokenChooser({ mode: 'sample', temperature: 1, topP: 0.85, seed });
    return Array.from({ length: 4000 }, () => choose(l, 0, 3));
  };
  const a = draw(7);
  assert.deepEqual(a, draw(7));
  assert.ok(!a.includes(2), 'token 2 lies outside the 0.85 nucleus');
  const share = a.filter((t) => t === 0).length / a.length;
  assert.ok(Math.abs(share - 2 / 3) < 0.04, `token 0 drawn ${share}, expected about 2/3`);
});

test('a temperature near 0 samples the greedy token', () => {
  const l = logitsOf([0.1, 2, 1.9, -3]);
  const choose = tokenChooser({ mode: 'sample', temperature: 0.01, topP: 1, seed: 3 });
  for (let i = 0; i < 50; i++) assert.equal(choose(l, 0, 4), argmaxRow(l, 0, 4));
});

test('line stop: at the first line break after some text; a completion may begin on the next line', () => {
  assert.equal(stopIndex('foo(a, b);', 'line'), -1);
  assert.equal(stopIndex('foo(a);\nbar()', 'line'), 7);
  assert.equal(stopIndex('\n  return x;\n}', 'line'), 12);
  assert.equal(stopIndex('\n\n', 'line'), -1);
  assert.equal(stopIndex('a\nb', 'none'), -1);
});

test('block stop: at a blank line or a line indented less than the cursor line', () => {
  const indent = cursorIndent('function f() {\n  const a = 1;\n  ');
  assert.equal(indent, '  ');
  assert.equal(stopIndex('return a;\n  }\n', 'block', indent), -1);
  const text = 'if (a) {\n    b();\n  }\n}\n';
  assert.equal(stopIndex(text, 'block', indent), text.indexOf('\n}'));
  assert.equal(stopIndex('x();\n\ny();\n', 'block', ''), 4);
  // The block's text is never cut inside a line.
  const cut = stopIndex(text, 'block', indent);
  assert.equal(text[cut], '\n');
});
