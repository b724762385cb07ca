// Weight-only quantization: DequantizeLinear (int8/uint8, per tensor or per axis) and com.microsoft
// MatMulNBits (2 to 8 bits in blocks along K). Training runs on float32 masters equal to what
// onnxruntime dequantizes, `(q − zero point) · scale` in float32; export either writes the masters as
// float32 or quantizes them again with the file's own scales and zero points.
import { roundHalfEven } from '../../protocol';

export interface DequantizeLinearSource {
  readonly kind: 'dequantize-linear';
  /** The float tensor the DequantizeLinear node produces (the weight's name). */
  readonly output: string;
  readonly quantized: string;
  readonly scale: string;
  readonly zeroPoint: string | null;
  /** Axis of the per-axis scale, or null for one scale. */
  readonly axis: number | null;
  /** ONNX data type of the quantized tensor (INT8 or UINT8). */
  readonly dataType: number;
}

export interface MatMulNBitsSource {
  readonly kind: 'matmul-nbits';
  readonly packed: string;
  readonly scales: string;
  /** Packed uint8 zero points, float zero points (the scales' type), or none (2^(bits-1)). */
  readonly zeroPoints: { readonly name: string; readonly packed: boolean } | null;
  readonly k: number;
  readonly n: number;
  readonly bits: number;
  readonly blockSize: number;
}

export type QuantizedSource = DequantizeLinearSource | MatMulNBitsSource;

export function describeQuantization(q: QuantizedSource): string {
  if (q.kind === 'dequantize-linear') return `${q.dataType === 3 ? 'int8' : 'uint8'} DequantizeLinear${q.axis === null ? '' : `, axis ${q.axis}`}`;
  return `${q.bits}-bit MatMulNBits, blocks of ${q.blockSize}`;
}

const SIGNED = { min: -128, max: 127 };
const UNSIGNED = { min: 0, max: 255 };

function intRange(dataType: number): { min: number; max: number } {
  return dataType === 3 ? SIGNED : UNSIGNED;
}

/** Integer values of int8 (data type 3) or uint8 (2) bytes. */
export function quantizedValues(bytes: Uint8Array, dataType: number): Int8Array | Uint8Array {
  return dataType === 3 ? new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
}

/** Index along `axis` of each element of a row-major tensor: its channel. */
function channelOf(dims: readonly number[], axis: number | null): (i: number) => number {
  if (axis === null) return () => 0;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const count = dims[axis];
  return (i) => Math.floor(i / inner) % count;
}

export function dequantizeLinear(
  q: Int8Array | Uint8Array,
  scale: Float32Array,
  zeroPoint: Int8Array | Uint8Array | null,
  dims: readonly number[],
  axis: number | null,
  out: Float32Array,
): void {
  const channel = channelOf(dims, axis);
  for (let i = 0; i < out.length; i++) {
    const c = channel(i);
    out[i] = Math.fround((q[i] - (zeroPoint ? zeroPoint[c] : 0)) * scale[c]);
  }
}

/** QuantizeLinear with the given scales and zero points: saturating, round half to even. */
export function quantizeLinear(
  w: Float32Array,
  scale: Float32Array,
  zeroPoint: Int8Array | Uint8Array | null,
  dims: readonly number[],
  axis: number | null,
  dataType: number,
): Uint8Array {
  const { min, max } = intRange(dataType);
  const out = new Uint8Array(w.length);
  const view = dataType === 3 ? new Int8Array(out.buffer) : out;
  const channel = channelOf(dims, axis);
  for (let i = 0; i < w.length; i++) {
    const c = channel(i);
    const v = roundHalfEven(w[i] / scale[c]) + (zeroPoint ? zeroPoint[c] : 0);
    view[i] = Math.min(max, Math.max(min, v));
  }
  return out;
}

/** Element `index` of a row of `bits`-bit values packed low bits first. */
function unpack(bytes: Uint8Array, byteOffset: number, index: number, bits: number): number {
  const bit = index * bits;
  return (bytes[byteOffset + (bit >> 3)] >> (bit & 7)) & ((1 << bits) - 1);
}

function nbitsLayout(s: MatMulNBitsSource): { blocks: number; blob: number; zpRow: number } {
  const blocks = Math.ceil(s.k / s.blockSize);
  return { blocks, blob: (s.blockSize * s.bits) / 8, zpRow: Math.ceil((blocks * s.bits) / 8) };
}

function zeroPointOf(s: MatMulNBitsSource, zp: Uint8Array | Float32Array | null, n: number, b: number, zpRow: number, blocks: number): number {
  if (!zp) return 1 << (s.bits - 1);
  if (zp instanceof Float32Array) return zp[n * blocks + b];
  return unpack(zp, n * zpRow, b, s.bits);
}

/** W [K, N] row-major from MatMulNBits' packed [N, blocks, blob] values, scales [N·blocks] and zero points. */
export function dequantizeNBits(s: MatMulNBitsSource, packed: Uint8Array, scales: Float32Array, zp: Uint8Array | Float32Array | null, out: Float32Array): void {
  const { blocks, blob, zpRow } = nbitsLayout(s);
  for (let n = 0; n < s.n; n++) {
    for (let b = 0; b < blocks; b++) {
      const scale = scales[n * blocks + b];
      const zero = zeroPointOf(s, zp, n, b, zpRow, blocks);
      const base = (n * blocks + b) * blob;
      for (let j = 0; j < s.blockSize; j++) {
        const k = b * s.blockSize + j;
        if (k >= s.k) break;
        out[k * s.n + n] = Math.fround((unpack(packed, base, j, s.bits) - zero) * scale);
      }
    }
  }
}

/** Packs W [K, N] again with the file's scales and zero points (saturating, round half to even). */
export function quantizeNBits(s: MatMulNBitsSource, w: Float32Array, scales: Float32Array, zp: Uint8Array | Float32Array | null): Uint8Array {
  const { blocks, blob, zpRow } = nbitsLayout(s);
  const out = new Uint8Array(s.n * blocks * blob);
  const max = (1 << s.bits) - 1;
  for (let n = 0; n < s.n; n++) {
    for (let b = 0; b < blocks; b++) {
      const scale = scales[n * blocks + b];
      const zero = zeroPointOf(s, zp, n, b, zpRow, blocks);
      const base = (n * blocks + b) * blob;
      for (let j = 0; j < s.blockSize; j++) {
        const k = b * s.blockSize + j;
        // Padding past K is stored as the zero point, as the quantizer writes it.
        const v = k < s.k ? Math.min(max, Math.max(0, roundHalfEven(w[k * s.n + n] / scale) + zero)) : zero;
        const bit = j * s.bits;
        out[base + (bit >> 3)] |= v << (bit & 7);
      }
    }
  }
  return out;
}
