// Zigzag LEB128 varints over safe integers (|n| ≤ 2^52), without BigInt: the coefficient mantissas
// need more than 32 bits in rare catch-up messages.
import { ErrorCode, ProtocolError } from './errors';

export const MAX_VARINT_MAGNITUDE = 2 ** 52;

export function zigzag(n: number): number {
  return n >= 0 ? 2 * n : -2 * n - 1;
}

export function unzigzag(z: number): number {
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

/** Appends the zigzag varints of `values` to a growable byte array; returns the bytes. */
export function encodeZigzagVarints(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  let pos = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isSafeInteger(v) || Math.abs(v) > MAX_VARINT_MAGNITUDE) {
      throw new ProtocolError(ErrorCode.TooLarge, `value ${v} at ${i} is not an integer of magnitude ≤ 2^52`);
    }
    let z = zigzag(v);
    while (z >= 128) {
      out[pos++] = (z % 128) | 128;
      z = Math.floor(z / 128);
    }
    out[pos++] = z;
  }
  return out.slice(0, pos);
}

/** Decodes exactly `count` zigzag varints that must fill `bytes` completely. */
export function decodeZigzagVarints(bytes: Uint8Array, count: number): Float64Array {
  const out = new Float64Array(count);
  let pos = 0;
  for (let i = 0; i < count; i++) {
    let z = 0;
    let scale = 1;
    for (;;) {
      if (pos >= bytes.length) throw new ProtocolError(ErrorCode.Truncated, `varint ${i} of ${count} runs past the end`);
      const b = bytes[pos++];
      z += (b & 127) * scale;
      if (b < 128) break;
      scale *= 128;
      if (scale > 2 ** 49) throw new ProtocolError(ErrorCode.Malformed, `varint ${i} is longer than 8 bytes`);
    }
    if (z > 2 * MAX_VARINT_MAGNITUDE) throw new ProtocolError(ErrorCode.Malformed, `varint ${i} exceeds 2^53`);
    out[i] = unzigzag(z);
  }
  if (pos !== bytes.length) throw new ProtocolError(ErrorCode.Malformed, `${bytes.length - pos} bytes left after ${count} varints`);
  return out;
}
