// The counter-based Gaussian generator of docs/zo-engine.md: z = f(federation seed F, seed index j,
// parameter index i), identical bits on every platform and in every kernel.
import { createHash } from 'node:crypto';

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

export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

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
        (((((((2.5090809287301226727e3 * r + 3.3430575583588128105e4) * r + 6.7265770927008700853e4) * r +
          4.5921953931549871457e4) * r + 1.3731693765509461125e4) * r + 1.9715909503065514427e3) * r +
          1.3314166789178437745e2) * r + 3.387132872796366608)) /
      (((((((5.226495278852854561e3 * r + 2.8729085735721942674e4) * r + 3.930789580009271061e4) * r +
        2.1213794301586595867e4) * r + 5.3941960214247511077e3) * r + 6.871870074920579083e2) * r +
        4.2313330701600911252e1) * r + 1)
    );
  }
  let r = Math.sqrt(-Math.log(q < 0 ? p : 1 - p));
  let value: number;
  if (r <= 5) {
    r -= 1.6;
    value =
      (((((((7.7454501427834140764e-4 * r + 2.27238449892691845833e-2) * r + 2.4178072517745061177e-1) * r +
        1.27045825245236838258) * r + 3.64784832476320460504) * r + 5.7694972214606914055) * r +
        4.6303378461565452959) * r + 1.42343711074968357734) /
      (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r + 1.51986665636164571966e-2) * r +
        1.4810397642748007459e-1) * r + 6.8976733498510000455e-1) * r + 1.6763848301838038494) * r +
        2.05319162663775882187) * r + 1);
  } else {
    r -= 5;
    value =
      (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r + 1.2426609473880784386e-3) * r +
        2.6532189526576123093e-2) * r + 2.9656057182850489123e-1) * r + 1.7848265399172913358) * r +
        5.4637849111641143699) * r + 6.6579046435011037772) /
      (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r +
        7.868691311456132591e-4) * r + 1.4875361290850614852e-2) * r + 1.3692988092273580531e-1) * r +
        5.9983220655588793769e-1) * r + 1);
  }
  return q < 0 ? -value : value;
}

/**
 * Zq[k] = round(4096 · Φ⁻¹((k + ½) / 65536)). The upper half is computed (round half up) and mirrored,
 * so Zq[65535 − k] = −Zq[k] exactly and the table's mean is exactly 0.
 */
function buildTable(): Int16Array {
  const table = new Int16Array(ZQ_SIZE);
  const half = ZQ_SIZE / 2;
  for (let k = half; k < ZQ_SIZE; k++) {
    const v = Math.round(ZQ_SCALE * normalQuantile((k + 0.5) / ZQ_SIZE));
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

function checkedTable(): Int16Array {
  const table = buildTable();
  const digest = tableDigest(table);
  if (digest !== ZQ_SHA256) {
    throw new Error(
      `Generator table mismatch: SHA-256 ${digest}, expected ${ZQ_SHA256}. This platform's floating-point ` +
        'functions differ from the reference, so its perturbations would diverge from other replicas.',
    );
  }
  return table;
}

/** The table (do not mutate). */
export const ZQ: Int16Array = checkedTable();

/** max |Zq|: bounds the exact accumulator (see coefficients.ts). */
export const ZQ_MAX_ABS: number = ZQ.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** Scalar reference: z(F, j, i) as a real number. Slow; for tests and spot checks. */
export function z(federationSeed: number, j: number, i: number): number {
  return ZQ[zIndex(seedKey(federationSeed, j), i)] / ZQ_SCALE;
}
