// A small seeded PRNG (xoshiro128**, seeded through splitmix32) built only from 32-bit integer
// operations, so a seed gives the same stream on every platform and Node version.

export interface Rng {
  /** Uniform 32-bit unsigned integer. */
  nextU32(): number;
  /** Uniform double in [0, 1) with 53 random bits. */
  nextFloat(): number;
  /** Uniform integer in [0, n), without modulo bias. */
  nextInt(n: number): number;
}

function splitmix32(state: number): { state: number; value: number } {
  const s = (state + 0x9e3779b9) | 0;
  let z = s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return { state: s, value: z >>> 0 };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Seeds may be any integer in [0, 2^32); other numbers are reduced to their low 32 bits. */
export function createRng(seed: number): Rng {
  let sm = seed >>> 0;
  const s = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    const r = splitmix32(sm);
    sm = r.state;
    s[i] = r.value;
  }
  // xoshiro must not start from the all-zero state; splitmix32 cannot give four zeros in a row,
  // but keep the guard explicit.
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1;

  const nextU32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  };

  return {
    nextU32,
    nextFloat: () => ((nextU32() >>> 5) * 67108864 + (nextU32() >>> 6)) / 9007199254740992,
    nextInt: (n: number) => {
      if (!Number.isInteger(n) || n <= 0 || n > 0x100000000) throw new RangeError(`nextInt: bad bound ${n}`);
      // Reject the top partial block of 2^32 so every residue is equally likely.
      const limit = 0x100000000 - (0x100000000 % n);
      for (;;) {
        const x = nextU32();
        if (x < limit) return x % n;
      }
    },
  };
}

/** Fisher–Yates shuffle in place. */
export function shuffleInPlace<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const tmp = items[i];
    items[i] = items[j];
    items[j] = tmp;
  }
  return items;
}

/** A stream derived from a parent seed and a label, e.g. (seed, epoch), independent of call order. */
export function deriveSeed(seed: number, label: string | number): number {
  return fnv1a32(`${seed >>> 0}/${label}`);
}

/** FNV-1a over the UTF-8 bytes of a string: a stable 32-bit hash for ids and paths. */
export function fnv1a32(text: string): number {
  const bytes = new TextEncoder().encode(text);
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}
