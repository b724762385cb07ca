// The generator's hash (zIndex in trainer/zo/generator.ts) as ONNX ops a WebGPU provider runs, which has no
// bitwise kernels: integer Add, Sub, Mul (wraps mod 2^32), Div by powers of two, Cast, and xor of two bytes
// as a Gather from a 65,536-entry table T[a·256 + b] = (a ^ b) << 8·j, one table per byte place. Every value
// is a uint32 (or, as a gather index, an int32 below 2^16), so each op is exact. fmix32(m ^ key), m the
// pair premix, is computed byte-wise:
//   1. x = m ^ key and h = x ^ (x >>> 16) together: the bytes of h are [m3^k3, m2^k2, (m1^m3)^(k1^k3),
//      (m0^m2)^(k0^k2)]; the m-side xors are shared by every seed, the k-side ones are the fed key bytes;
//   2. h ·= C1; h ^= h >>> 13 as three byte xors (h's bytes with those of h >>> 13, whose top byte is 3 bits);
//   3. h ·= C2; the final h ^= h >>> 16 leaves the high half-word (the even parameter's index) unchanged,
//      and the low half-word (the odd one's) is two byte xors.
// The perturbation graphs hash a range of pairs; the rank-1 pass hashes the pairs its factors use.
import * as ort from 'onnxruntime-node';
import { PAIR_MULTIPLIER } from '../zo/generator';
import { DataType, int64Tensor, rawTensor, type AddNode, type onnxTypes } from '../model/onnx';

/** fmix32's multipliers (trainer/util/hash32.ts). */
export const FMIX_MUL_1 = 0x85ebca6b;
export const FMIX_MUL_2 = 0xc2b2ae35;

export function uint32Scalar(name: string, value: number): onnxTypes.Tensor {
  return rawTensor(name, DataType.UINT32, [1], new Uint8Array(Uint32Array.of(value >>> 0).buffer));
}

/** T_j[a·256 + b] = (a ^ b) << 8·j for bytes a, b: xor of two bytes, already moved to its byte place. */
function xorTable(place: number): Uint32Array {
  const t = new Uint32Array(65536);
  for (let a = 0; a < 256; a++) for (let b = 0; b < 256; b++) t[a * 256 + b] = ((a ^ b) << (8 * place)) >>> 0;
  return t;
}

/** The key's bytes as the arithmetic hash takes them, low to high: [k0 ^ k2, k1 ^ k3, k2, k3] (see above). */
export function keyBytes(key: number): [number, number, number, number] {
  const k = key >>> 0;
  const k3 = k >>> 24;
  const k2 = (k >>> 16) & 255;
  const k1 = (k >>> 8) & 255;
  const k0 = k & 255;
  return [k0 ^ k2, k1 ^ k3, k2, k3];
}

/** The input holding byte j of seed k's key (int32 [1]), in every graph that hashes on the device. */
export const keyByteName = (k: number, j: number): string => `key_${k}_b${j}`;

/** Seed k's key bytes as the feeds keyByteName names. */
export function keyByteFeeds(k: number, key: number): Record<string, ort.Tensor> {
  return Object.fromEntries(keyBytes(key).map((b, j) => [keyByteName(k, j), new ort.Tensor('int32', Int32Array.of(b), [1])]));
}

/** The constants the hash reads (a graph keeps those its nodes use). */
export function arithmeticHashInitializers(): onnxTypes.Tensor[] {
  return [
    ...[0, 1, 2, 3].map((j) => rawTensor(`xor_${8 * j}`, DataType.UINT32, [65536], new Uint8Array(xorTable(j).buffer))),
    uint32Scalar('u_pair_mul', PAIR_MULTIPLIER),
    uint32Scalar('u_fmix_1', FMIX_MUL_1),
    uint32Scalar('u_fmix_2', FMIX_MUL_2),
    uint32Scalar('u_256', 256),
    uint32Scalar('u_8192', 8192),
    uint32Scalar('u_65536', 65536),
    uint32Scalar('u_2p24', 2 ** 24),
    int64Tensor('i_1v', [1]),
  ];
}

/** The hash's node builders over one graph's node list. */
export function arithmeticHash(add: AddNode): {
  /** The part every seed shares: the premix bytes of pair indices (uint32 [Q]), as xor-table row offsets. */
  premix: (pairIndex: string) => string[];
  /** One seed's table indices, int32 [Q, 2] (even parameter, odd parameter), from the premix and its key bytes. */
  seedIndices: (premix: readonly string[], keyByte: (j: number) => string, tag: string) => string;
} {
  const toIndex = (x: string, out: string): string => add('Cast', [x], out, { to: DataType.INT32 });
  /** Bytes of a uint32 value, low to high: q = x/256, b0 = x − q·256, … */
  const bytesOf = (x: string, tag: string, count: 2 | 3 | 4): string[] => {
    const out: string[] = [];
    let rest = x;
    for (let j = 0; j < count - 1; j++) {
      const q = add('Div', [rest, 'u_256'], `${tag}_q${j}`);
      out.push(add('Sub', [rest, add('Mul', [q, 'u_256'], `${tag}_q${j}s`)], `${tag}_b${j}`));
      rest = q;
    }
    out.push(rest);
    return out;
  };
  /** (a ^ b) << 8·place for bytes a, b (uint32). */
  const xorBytes = (a: string, b: string, place: number, tag: string): string =>
    add('Gather', [`xor_${8 * place}`, toIndex(add('Add', [add('Mul', [a, 'u_256'], `${tag}_a`), b], `${tag}_ab`), `${tag}_i`)], tag, { axis: 0 });

  const premix = (pairIndex: string): string[] => {
    const mixed = add('Mul', [pairIndex, 'u_pair_mul'], 'premix');
    const [m0, m1, m2, m3] = bytesOf(mixed, 'm', 4);
    const shifted = (x: string, tag: string): string => toIndex(add('Mul', [x, 'u_256'], `${tag}_s`), tag);
    return [shifted(xorBytes(m0, m2, 0, 'n0'), 'a0'), shifted(xorBytes(m1, m3, 0, 'n1'), 'a1'), shifted(m2, 'a2'), shifted(m3, 'a3')];
  };

  const seedIndices = (base: readonly string[], keyByte: (j: number) => string, t: string): string => {
    // 1. h = x ^ (x >>> 16), x = m ^ key.
    const parts = base.map((a, j) => add('Gather', [`xor_${8 * j}`, add('Add', [a, keyByte(j)], `${t}_i${j}`)], `${t}_x${j}`, { axis: 0 }));
    let h = add('Add', [add('Add', [parts[0], parts[1]], `${t}_x01`), add('Add', [parts[2], parts[3]], `${t}_x23`)], `${t}_h1`);
    // 2. h ·= C1; h ^= h >>> 13.
    h = add('Mul', [h, 'u_fmix_1'], `${t}_m1`);
    const u = bytesOf(h, `${t}_u`, 4);
    const sh = bytesOf(add('Div', [h, 'u_8192'], `${t}_sh`), `${t}_v`, 3);
    const low = add('Add', [xorBytes(u[0], sh[0], 0, `${t}_y0`), xorBytes(u[1], sh[1], 1, `${t}_y1`)], `${t}_y01`);
    const high = add('Add', [xorBytes(u[2], sh[2], 2, `${t}_y2`), add('Mul', [u[3], 'u_2p24'], `${t}_y3`)], `${t}_y23`);
    h = add('Add', [low, high], `${t}_h2`);
    // 3. h ·= C2; the even index is h >>> 16, the odd one (h & 0xFFFF) ^ (h >>> 16).
    h = add('Mul', [h, 'u_fmix_2'], `${t}_m2`);
    const hi = add('Div', [h, 'u_65536'], `${t}_hi`);
    const lo = add('Sub', [h, add('Mul', [hi, 'u_65536'], `${t}_his`)], `${t}_lo`);
    const [h2, h3] = bytesOf(hi, `${t}_hb`, 2);
    const [h0, h1] = bytesOf(lo, `${t}_lb`, 2);
    const odd = add('Add', [xorBytes(h1, h3, 1, `${t}_o1`), xorBytes(h0, h2, 0, `${t}_o0`)], `${t}_odd`);
    return add(
      'Concat',
      [add('Unsqueeze', [toIndex(hi, `${t}_even_i`), 'i_1v'], `${t}_even2`), add('Unsqueeze', [toIndex(odd, `${t}_odd_i`), 'i_1v'], `${t}_odd2`)],
      `${t}_pairs`,
      { axis: 1 },
    );
  };
  return { premix, seedIndices };
}
