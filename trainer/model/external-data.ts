// Tensors stored outside the .onnx file (TensorProto data_location = EXTERNAL): `location` names a file
// beside the model, `offset`/`length` a byte range in it.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { ModelError } from './errors';
import { onnx, onnxTypes } from './onnx';
import { errorMessage } from '../../protocol/errors';

export interface ExternalRef {
  location: string;
  offset: number;
  length: number | null;
}

export function isExternal(t: onnxTypes.Tensor): boolean {
  return t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL;
}

export function externalRef(t: onnxTypes.Tensor, file: string): ExternalRef {
  const entries = new Map(t.externalData.map((e) => [e.key, e.value]));
  const location = entries.get('location');
  if (!location) throw new ModelError(file, `initializer '${t.name}' is external but has no location`);
  const offset = Number(entries.get('offset') ?? '0');
  const lengthText = entries.get('length');
  const length = lengthText == null ? null : Number(lengthText);
  if (!Number.isSafeInteger(offset) || offset < 0 || (length !== null && (!Number.isSafeInteger(length) || length < 0))) {
    throw new ModelError(file, `initializer '${t.name}' has an invalid external offset/length`);
  }
  return { location, offset, length };
}

/** Resolves `location` inside the model's folder; refuses paths that leave it. */
export function resolveLocation(modelDir: string, location: string, file: string): string {
  const clean = normalize(location);
  if (isAbsolute(clean) || clean === '..' || clean.startsWith(`..${sep}`)) {
    throw new ModelError(file, `external data location '${location}' must be a relative path inside the model's folder`);
  }
  return join(modelDir, clean);
}

/** Reads external byte ranges, keeping each data file open once. */
export class ExternalDataReader {
  private readonly open = new Map<string, { fd: number; size: number }>();

  constructor(
    private readonly modelDir: string,
    private readonly file: string,
  ) {}

  /** Fills `out` with `ref`'s bytes; `expected` is the tensor's byte size. */
  read(tensorName: string, ref: ExternalRef, expected: number, out: Uint8Array): void {
    if (ref.length !== null && ref.length !== expected) {
      throw new ModelError(this.file, `initializer '${tensorName}': external length ${ref.length} != ${expected} bytes for its shape`);
    }
    const path = resolveLocation(this.modelDir, ref.location, this.file);
    const handle = this.handle(path);
    if (ref.offset + expected > handle.size) {
      throw new ModelError(
        this.file,
        `initializer '${tensorName}': external data ${ref.location} is truncated (needs bytes up to ${ref.offset + expected}, file has ${handle.size})`,
      );
    }
    let done = 0;
    while (done < expected) {
      const n = readSync(handle.fd, out, done, Math.min(expected - done, 1 << 30), ref.offset + done);
      if (n <= 0) throw new ModelError(this.file, `initializer '${tensorName}': short read from ${ref.location}`);
      done += n;
    }
  }

  close(): void {
    for (const { fd } of this.open.values()) closeSync(fd);
    this.open.clear();
  }

  private handle(path: string): { fd: number; size: number } {
    let h = this.open.get(path);
    if (!h) {
      let fd: number;
      try {
        fd = openSync(path, 'r');
      } catch (e) {
        throw new ModelError(this.file, `external data file ${path} cannot be opened (${errorMessage(e)})`);
      }
      h = { fd, size: fstatSync(fd).size };
      this.open.set(path, h);
    }
    return h;
  }
}
