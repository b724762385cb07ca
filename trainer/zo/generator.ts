// The counter-based Gaussian generator of docs/zo-engine.md: z = f(federation seed F, seed index j,
// parameter index i), identical bits on every platform and in every kernel.
import { createHash } from 'node:crypto';
import { fmix32 } from '../util/hash32';

/** Bump whenever anything in this file's arithmetic or the table changes (it changes the wire meaning). */
export const GENERATOR_VERSION = 1;

/** Multiplier of the per-pair premix; the premix depends only on the parameter pair, not on the seed. */
export const PAIR_MULTIPLIER = 0x9e3779b1;
const SEED_MULTIPLIER = 0x9e3779b9;
const FEDERATION_SALT = 0x5eed5eed;

/** Fixed-point scale of the table: z = Zq / ZQ_SCALE. */
export const ZQ_SCALE = 4096;
export const ZQ_SIZE = 65536;

/** SHA-256 of the table serialised as little-endian int16, pinned so a divergent platform stops. */
export const ZQ_SHA256 = '1ea009ce409dac97d6bd609266910f809c5fb912f78e16bd89145b08174d6fc5';

export { fmix32 };

/** Key of seed j of federation F (both unsigned 32-bit). */
export function seedKey(federationSeed: number, j: number): number {
  return fmix32(fmix32((federationSeed ^ FEDERATION_SALT) >>> 0) ^ Math.imul((j + 1) | 0, SEED_MULTIPLIER));
}

/** Per-pair premix: p = i >>> 1. */
export function pairPremix(p: number): number {
  return Math.imul(p, PAIR_MULTIPLIER);
}

/** Table index of parameter i under a seed key. */
export function zIndex(key: number, i: number): number {
  const word = fmix32(pairPremix(i >>> 1) ^ key);
  return (i & 1) === 0 ? word >>> 16 : word & 0xffff;
}

/**
 * Inverse of the standard normal CDF (Wichura's AS 241, PPND16: relative error about 1e-16),
 * written out so every platform evaluates the same double operations.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile needs 0 < p < 1, got ${p}`);
  const q = p - 0.5;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    return (
      (q *
        (((((((2509.0809287301227 * r + 33430.57558358813) * r + 67265.7709270087) * r + 45921.95393154987) * r + 13731.69376550946) * r + 1971.5909503065513) *
          r +
          133.14166789178438) *
          r +
          3.3871328727963665)) /
      (((((((5226.495278852854 * r + 28729.085735721943) * r + 39307.89580009271) * r + 21213.794301586597) * r + 5394.196021424751) * r + 687.1870074920579) *
        r +
        42.31333070160091) *
        r +
        1)
    );
  }
  let r = Math.sqrt(-Math.log(q < 0 ? p : 1 - p));
  let value: number;
  if (r <= 5) {
    r -= 1.6;
    value =
      (((((((0.0007745450142783414 * r + 0.022723844989269184) * r + 0.2417807251774506) * r + 1.2704582524523684) * r + 3.6478483247632045) * r +
        5.769497221460691) *
        r +
        4.630337846156546) *
        r +
        1.4234371107496835) /
      (((((((1.0507500716444169e-9 * r + 0.0005475938084995345) * r + 0.015198666563616457) * r + 0.14810397642748008) * r + 0.6897673349851) * r +
        1.6763848301838038) *
        r +
        2.053191626637759) *
        r +
        1);
  } else {
    r -= 5;
    value =
      (((((((2.0103343992922881e-7 * r + 0.000027115555687434876) * r + 0.0012426609473880784) * r + 0.026532189526576124) * r + 0.29656057182850487) * r +
        1.7848265399172913) *
        r +
        5.463784911164114) *
        r +
        6.657904643501103) /
      (((((((2.0442631033899397e-15 * r + 1.421511758316446e-7) * r + 0.000018463183175100548) * r + 0.0007868691311456133) * r + 0.014875361290850615) * r +
        0.1369298809227358) *
        r +
        0.599832206555888) *
        r +
        1);
  }
  return q < 0 ? -value : value;
}

/**
 * T[k] = round(scale · Φ⁻¹((k + ½) / 65536)). The upper half is computed (round half up) and mirrored,
 * so T[65535 − k] = −T[k] exactly and the table's mean is exactly 0. Zq is the table at scale 4096.
 */
export function quantileTable(scale: number): Int16Array {
  const table = new Int16Array(ZQ_SIZE);
  const half = ZQ_SIZE / 2;
  for (let k = half; k < ZQ_SIZE; k++) {
    const v = Math.round(scale * normalQuantile((k + 0.5) / ZQ_SIZE));
    table[k] = v;
    table[ZQ_SIZE - 1 - k] = -v;
  }
  return table;
}

export function tableDigest(table: Int16Array): string {
  const bytes = new DataView(new ArrayBuffer(table.length * 2));
  for (let k = 0; k < table.length; k++) bytes.setInt16(k * 2, table[k], true);
  return createHash('sha256').update(new Uint8Array(bytes.buffer)).digest('hex');
}

/** The table at `scale`, refused unless its SHA-256 is `sha256` (a platform whose Φ⁻¹ differs stops here). */
export function checkedTable(scale: number, sha256: string): Int16Array {
  const table = quantileTable(scale);
  const digest = tableDigest(table);
  if (digest !== sha256) {
    throw new Error(
      `Generator table mismatch: SHA-256 ${digest}, expected ${sha256}. This platform's floating-point ` +
        'functions differ from the reference, so its perturbations would diverge from other replicas.',
    );
  }
  return table;
}

/** The table (do not mutate). */
export const ZQ: Int16Array = checkedTable(ZQ_SCALE, ZQ_SHA256);

/** Scalar reference: z(F, j, i) as a real number. Slow; for tests and spot checks. */
export function z(federationSeed: number, j: number, i: number): number {
  return ZQ[zIndex(seedKey(federationSeed, j), i)] / ZQ_SCALE;
}
