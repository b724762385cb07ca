// Bounds-checked little-endian readers and writers: every read past the end is a Truncated error,
// never an exception from a typed array.
import { ErrorCode, ProtocolError } from './errors';

export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.ensure(1);
    this.view.setUint8(this.pos, v);
    this.pos += 1;
    return this;
  }
  u16(v: number): this {
    this.ensure(2);
    this.view.setUint16(this.pos, v, true);
    this.pos += 2;
    return this;
  }
  u32(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
    return this;
  }
  f32(v: number): this {
    this.ensure(4);
    this.view.setFloat32(this.pos, v, true);
    this.pos += 4;
    return this;
  }
  f64(v: number): this {
    this.ensure(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  /** UTF-8 string prefixed by its byte length (u8 or u16). */
  str(s: string, lengthBytes: 1 | 2, max: number): this {
    const b = new TextEncoder().encode(s);
    if (b.length > max) throw new ProtocolError(ErrorCode.TooLarge, `string of ${b.length} bytes exceeds ${max}`);
    if (lengthBytes === 1) this.u8(b.length);
    else this.u16(b.length);
    return this.bytes(b);
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

export class ByteReader {
  private pos = 0;
  private readonly view: DataView;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) {
      throw new ProtocolError(ErrorCode.Truncated, `frame ends inside ${what} (need ${n} bytes at offset ${this.pos}, have ${this.remaining})`);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f32(what: string): number {
    this.need(4, what);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(what: string): number {
    this.need(8, what);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  str(lengthBytes: 1 | 2, max: number, what: string): string {
    const n = lengthBytes === 1 ? this.u8(what) : this.u16(what);
    if (n > max) throw new ProtocolError(ErrorCode.Malformed, `${what} is ${n} bytes, at most ${max} allowed`);
    const b = this.bytes(n, what);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(b);
    } catch {
      throw new ProtocolError(ErrorCode.Malformed, `${what} is not valid UTF-8`);
    }
  }
  /** Every byte must be consumed: trailing garbage means the peer speaks something else. */
  end(): void {
    if (this.remaining !== 0) throw new ProtocolError(ErrorCode.Malformed, `${this.remaining} unexpected trailing bytes`);
  }
}
