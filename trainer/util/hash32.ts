// 32-bit integer hashing shared by the generator (docs/zo-engine.md) and the data splits: only
// Math.imul, shifts and xor, so every platform computes the same bits.

/** murmur3's finaliser: a bijection on unsigned 32-bit words with full avalanche. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
