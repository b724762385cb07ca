// Seed indices travel bit-packed, ⌈log2 K⌉ bits each, least significant bit first.
export function seedIndexBits(k: number): number {
  return Math.max(1, Math.ceil(Math.log2(k)));
}

export function packIndices(indices: ArrayLike<number>, bits: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((indices.length * bits) / 8));
  let bit = 0;
  for (let n = 0; n < indices.length; n++) {
    const v = indices[n];
    for (let b = 0; b < bits; b++, bit++) {
      if ((v >>> b) & 1) out[bit >>> 3] |= 1 << (bit & 7);
    }
  }
  return out;
}

export function unpackIndices(bytes: Uint8Array, count: number, bits: number): Uint32Array {
  const out = new Uint32Array(count);
  if (bits > 24) {
    // Wider than a 32-bit accumulator can take a byte at a time: bit by bit.
    let bit = 0;
    for (let n = 0; n < count; n++) {
      let v = 0;
      for (let b = 0; b < bits; b++, bit++) {
        if ((bytes[bit >>> 3] >>> (bit & 7)) & 1) v |= 1 << b;
      }
      out[n] = v >>> 0;
    }
    return out;
  }
  // A byte at a time into an accumulator (at most 24 + 7 bits held), least significant bit first: the
  // server decodes every upload through here, and a loop over single bits cost most of the decode.
  const mask = (1 << bits) - 1;
  let acc = 0;
  let held = 0;
  let pos = 0;
  for (let n = 0; n < count; n++) {
    while (held < bits) {
      acc |= bytes[pos++] << held;
      held += 8;
    }
    out[n] = acc & mask;
    acc >>>= bits;
    held -= bits;
  }
  return out;
}
