// Accepting a suggestion never doubles the whitespace before the cursor.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { trimOverlap } from '../../extension/completions/overlap';

test('a suggestion starting with the space the line already ends with loses that space', () => {
  const before = '  const count = ';
  const text = trimOverlap(before, ' items.length;');
  assert.equal(text, 'items.length;');
  assert.equal(before + text, '  const count = items.length;');
});

test('indentation already typed is not typed again', () => {
  assert.equal(trimOverlap('if (x) {\n    ', '    return 1;'), 'return 1;');
  assert.equal(trimOverlap('if (x) {\n\t', '\treturn 1;'), 'return 1;');
  assert.equal(trimOverlap('if (x) {\n  ', '    return 1;'), '  return 1;', 'two of the four spaces were typed');
});

test("without whitespace before the cursor, or at the suggestion's start, nothing changes", () => {
  assert.equal(trimOverlap('const count =', ' items.length;'), ' items.length;');
  assert.equal(trimOverlap('const count = ', 'items.length;'), 'items.length;');
  assert.equal(trimOverlap('', ' x'), ' x');
});

test('only whitespace overlaps: a repeated word is kept', () => {
  assert.equal(trimOverlap('a = a', 'a + 1'), 'a + 1');
});

test('whitespace before the line break does not count: the suggestion starts a new line', () => {
  assert.equal(trimOverlap('x = 1; \n', ' y'), ' y');
});

test('a suggestion of whitespace alone is trimmed to what was not typed', () => {
  assert.equal(trimOverlap('x = ', ' '), '');
});
