// Compressed blocks are remembered by content: the same bytes encode to the same block again (as a
// server sending one round's probabilities to many clients does), and a caller that changes its buffer
// afterwards gets the new content encoded, never the remembered one.
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { ByteReader, ByteWriter } from '../../protocol/bytes';
import { readCompressed, writeCompressed } from '../../protocol/node/compress';

function encode(raw: Uint8Array): Uint8Array {
  const w = new ByteWriter();
  writeCompressed(w, raw);
  return w.finish();
}

function decode(block: Uint8Array, max: number): Uint8Array {
  return Uint8Array.from(readCompressed(new ByteReader(block), max, 'block'));
}

test('the same content encodes to the same block; a reused buffer encodes its new content', () => {
  // Compressible bytes, and hash output, which no codec shrinks (so the block holds the raw bytes).
  const noise = Buffer.concat(Array.from({ length: 128 }, (_, i) => createHash('sha256').update(String(i)).digest()));
  for (const make of [(j: number) => j % 5, (j: number) => noise[j]]) {
    const raw = Uint8Array.from({ length: 4096 }, (_, j) => make(j));
    const first = encode(raw);
    assert.deepEqual(encode(Uint8Array.from(raw)), first);
    assert.deepEqual(decode(first, raw.length), raw);
    const original = Uint8Array.from(raw);
    raw[17] ^= 0xff;
    // The remembered block of the original content is not the caller's (now changed) buffer.
    assert.deepEqual(decode(encode(original), raw.length), original);
    const changed = encode(raw);
    assert.notDeepEqual(changed, first);
    assert.deepEqual(decode(changed, raw.length), raw);
  }
});
