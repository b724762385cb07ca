// The report's text samples: token pieces that rebuild the window with no broken character, and the
// tokens named as moved most.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { tokenPieces } from '../../simulate/text-samples';
import { mostMoved, renderTextSamples } from '../../simulate/text-samples-html';
import type { TextSample } from '../../simulate/text-samples';

// A byte-level "tokenizer": each id is one UTF-8 byte, decoded as a TextDecoder does (broken sequences → U+FFFD).
const decode = (ids: ArrayLike<number>): string => new TextDecoder().decode(Uint8Array.from(Array.from(ids)));
const bytes = (text: string): number[] => Array.from(new TextEncoder().encode(text));

test('token pieces join to the decoded window; a character split over tokens goes whole to its last token', () => {
  const ids = bytes('a — b ✓');
  const pieces = tokenPieces(decode, ids);
  assert.equal(pieces.length, ids.length);
  assert.equal(pieces.join(''), 'a — b ✓');
  assert.ok(
    pieces.every((p) => !p.includes('\uFFFD')),
    JSON.stringify(pieces),
  );
  // '—' is 3 bytes: two empty pieces, then the character.
  assert.deepEqual(pieces.slice(2, 5), ['', '', '—']);
});

const sample = (base: number[], final: number[] | null): TextSample => ({
  exampleId: 'src/a.ts#0',
  pieces: ['x', '<y>', 'z', 'w'],
  promptTokens: 2,
  base: { tokenLoss: base, completion: 'base says' },
  final: final ? { tokenLoss: final, completion: 'final says' } : null,
});

test('the tokens that moved most, largest change first, either way', () => {
  assert.deepEqual(mostMoved(sample([1, 2, 3], [1.5, 0.5, 3.1]), 2), [2, 1]);
  assert.deepEqual(mostMoved(sample([1, 2, 3], null)), []);
});

test('the section escapes the text, shades every token and says when no round was committed', () => {
  const html = renderTextSamples({ round: 2, samples: [sample([1, 2, 3], [1.5, 0.5, 3.1])] });
  assert.match(html, /&lt;y&gt;/);
  assert.doesNotMatch(html, /<y>/);
  assert.match(html, /loss 2\.00 → 0\.50 nats \(−1\.50\)/);
  assert.match(html, /round 2/);
  const none = renderTextSamples({ round: 0, samples: [sample([1, 2, 3], null)] });
  assert.match(none, /No round was committed/);
  assert.equal(renderTextSamples(null), '');
});
