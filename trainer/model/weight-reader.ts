// A trained weight's base values read back from the model's own files, a range at a time: the float bytes
// of an initializer stored raw (inline in the .onnx at a known offset, or in an external-data file). The
// engine then keeps no copy of w0 (docs/zo-engine.md, "Memory"). Reads check that the file is still the
// one loaded (size and modification time), so a model replaced in place fails loudly instead of
// silently giving other weights.
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { ModelError } from './errors';
import { bytesPerElement, decodeFloats, type FloatStorage } from './tensor-data';
import { errorMessage } from '../../protocol/errors';

interface FileStamp {
  readonly size: number;
  readonly mtimeMs: number;
}

/** One data file of a model: opened on demand, checked against the stamp taken at load. */
export class WeightFile {
  private fd: number | null = null;

  private constructor(
    readonly path: string,
    private readonly stamp: FileStamp,
    /** The model, for messages. */
    private readonly model: string,
  ) {}

  static at(path: string, model: string): WeightFile {
    const s = statSync(path);
    return new WeightFile(path, { size: s.size, mtimeMs: s.mtimeMs }, model);
  }

  get size(): number {
    return this.stamp.size;
  }

  /** Fills `out` from byte `position`. */
  read(position: number, out: Uint8Array): void {
    const fd = this.open();
    for (let done = 0; done < out.length;) {
      const n = readSync(fd, out, done, Math.min(out.length - done, 1 << 30), position + done);
      if (n <= 0) throw new ModelError(this.model, `short read from ${this.path} at byte ${position + done}`);
      done += n;
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private open(): number {
    if (this.fd !== null) return this.fd;
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (e) {
      throw new ModelError(this.model, `the engine reads the base weights back from ${this.path}, which cannot be opened any more (${errorMessage(e)})`);
    }
    const s = fstatSync(fd);
    if (s.size !== this.stamp.size || s.mtimeMs !== this.stamp.mtimeMs) {
      closeSync(fd);
      throw new ModelError(this.model, `${this.path} changed since the model was loaded; the engine reads the base weights back from it: load the model again`);
    }
    this.fd = fd;
    return fd;
  }
}

/** The base values of one weight, `length` elements in `storage` from byte `offset` of `file`. */
export class FileWeightReader {
  private scratch: Uint8Array | null = null;

  constructor(
    readonly file: WeightFile,
    readonly offset: number,
    readonly storage: FloatStorage,
    readonly length: number,
  ) {}

  /** Fills `out` with elements [start, start + out.length). Float32 bytes land in `out` directly. */
  read(start: number, out: Float32Array): void {
    if (!Number.isInteger(start) || start < 0 || start + out.length > this.length) {
      throw new RangeError(`read of [${start}, ${start + out.length}) outside the weight's ${this.length} values`);
    }
    const bytes = bytesPerElement(this.storage);
    const position = this.offset + start * bytes;
    if (this.storage === 'float32') {
      this.file.read(position, new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
      return;
    }
    // Half-width storage: read a piece at a time through a small scratch buffer and widen it.
    const piece = 1 << 20;
    if (this.scratch === null) this.scratch = new Uint8Array(piece * bytes);
    for (let done = 0; done < out.length; done += piece) {
      const n = Math.min(piece, out.length - done);
      const raw = this.scratch.subarray(0, n * bytes);
      this.file.read(position + done * bytes, raw);
      decodeFloats(raw, this.storage, out.subarray(done, done + n));
    }
  }

  /** Closes the file until the next read. */
  close(): void {
    this.file.close();
    this.scratch = null;
  }
}
