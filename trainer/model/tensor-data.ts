// Conversions between ONNX tensor storage (float32 / float16 / bfloat16, raw bytes or typed fields)
// and float32 arrays. Raw data is little-endian by the ONNX spec, as are the platforms onnxruntime-node
// ships for, so typed-array views over the bytes are read as is.
import { DataType } from './onnx';

export type FloatStorage = 'float32' | 'float16' | 'bfloat16';

export function floatStorageOf(dataType: number): FloatStorage | null {
  if (dataType === DataType.FLOAT) return 'float32';
  if (dataType === DataType.FLOAT16) return 'float16';
  if (dataType === DataType.BFLOAT16) return 'bfloat16';
  return null;
}

export function storageDataType(storage: FloatStorage): number {
  return storage === 'float32' ? DataType.FLOAT : storage === 'float16' ? DataType.FLOAT16 : DataType.BFLOAT16;
}

export function bytesPerElement(storage: FloatStorage): number {
  return storage === 'float32' ? 4 : 2;
}

let halfTable: Float32Array | null = null;

/** All 65,536 float16 values as float32 (exact: every half is representable). */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) table[h] = sign * frac * 2 ** -24;
    else if (exp === 31) table[h] = frac ? NaN : sign * Infinity;
    else table[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  halfTable = table;
  return table;
}

/** Decodes `count` elements of little-endian `storage` bytes into `out` (float32). */
export function decodeFloats(bytes: Uint8Array, storage: FloatStorage, out: Float32Array): void {
  const n = out.length;
  if (storage === 'float32') {
    new Uint8Array(out.buffer, out.byteOffset, n * 4).set(bytes.subarray(0, n * 4));
    return;
  }
  const halves = aligned16(bytes, n);
  if (storage === 'float16') {
    const table = halfToFloatTable();
    for (let i = 0; i < n; i++) out[i] = table[halves[i]];
  } else {
    const bits = new Uint32Array(out.buffer, out.byteOffset, n);
    for (let i = 0; i < n; i++) bits[i] = halves[i] << 16;
  }
}

function aligned16(bytes: Uint8Array, n: number): Uint16Array {
  if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  // A copy (Node Buffers' slice() is a view, so construct a fresh array).
  return new Uint16Array(new Uint8Array(bytes.subarray(0, n * 2)).buffer);
}

/** Little-endian bytes of a float32 array, as a view when possible. */
export function float32Bytes(data: Float32Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → float16 bits, rounding to nearest even (overflow → ±Inf). */
export function floatToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 255) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** float32 → bfloat16 bits, rounding to nearest even. */
export function floatToBfloat16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Little-endian bytes of `data` in `storage`. */
export function encodeFloats(data: Float32Array, storage: FloatStorage): Uint8Array {
  if (storage === 'float32') return new Uint8Array(data.slice().buffer);
  const out = new Uint16Array(data.length);
  const convert = storage === 'float16' ? floatToHalf : floatToBfloat16;
  for (let i = 0; i < data.length; i++) out[i] = convert(data[i]);
  return new Uint8Array(out.buffer);
}
