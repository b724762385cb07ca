// Loads an ONNX causal LM: decodes the protobuf, checks the interface, extracts every floating-point
// initializer as a float32 master copy and computes the model identity hash.
//
// Trainable weights are the float32 / float16 / bfloat16 *initializers*. Float tensors held in Constant
// nodes (attention scales, mask values, folded constants) and double or sparse initializers are not
// trained: they stay in the graph as they are.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { dirname } from 'node:path';
import { ModelError } from './errors';
import { ExternalDataReader, externalRef, isExternal, resolveLocation } from './external-data';
import { decodeModel, defaultOpset, onnx, onnxTypes, toNumber } from './onnx';
import { bytesPerElement, decodeFloats, decodeHalfWords, floatStorageOf, type FloatStorage } from './tensor-data';
import { describeCausalLm, type CausalLmIo } from './validate';

export interface WeightSpec {
  name: string;
  dims: number[];
  /** How the base model stores it; the master copy is always float32. */
  storage: FloatStorage;
}

export interface FloatWeight extends WeightSpec {
  data: Float32Array;
}

export interface LoadedModel {
  /** Path (or label, for bytes) the model came from; used in error messages. */
  file: string;
  /** SHA-256 (hex) of the model file bytes followed by its external data files (sorted by location). */
  identity: string;
  opset: number;
  /** The model with every tensor inline; float initializers keep name/type/dims but their data is released. */
  proto: onnxTypes.Model;
  /** Float32 master copies of the trainable initializers, sorted by name (code-unit order). */
  weights: FloatWeight[];
  io: CausalLmIo;
}

export interface LoadOptions {
  /**
   * Where to put each master copy (e.g. a view into WebAssembly memory); must return exactly `length`
   * floats. Default: a fresh Float32Array.
   */
  allocate?: (spec: WeightSpec, length: number) => Float32Array;
}

/** Reads and validates `path` (and its external data files). */
export async function loadModel(path: string, options: LoadOptions = {}): Promise<LoadedModel> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new ModelError(path, `cannot be read (${(e as Error).message})`);
  }
  return parseModel(bytes, path, { ...options, modelDir: dirname(path) });
}

/**
 * Decodes model bytes. `modelDir` is needed only when tensors are stored externally; without it such a
 * model is refused.
 */
export function parseModel(bytes: Uint8Array, file: string, options: LoadOptions & { modelDir?: string } = {}): LoadedModel {
  const proto = decode(bytes, file);
  const graph = proto.graph;
  const io = describeCausalLm(graph, file);
  const opset = defaultOpset(proto);
  const reader = options.modelDir !== undefined ? new ExternalDataReader(options.modelDir, file) : null;
  const externalFiles = new Set<string>();
  const weights: FloatWeight[] = [];
  const seen = new Set<string>();
  try {
    for (const t of graph.initializer) {
      if (seen.has(t.name)) throw new ModelError(file, `initializer '${t.name}' is defined twice`);
      seen.add(t.name);
      if (isExternal(t)) {
        if (!reader || options.modelDir === undefined) throw new ModelError(file, `initializer '${t.name}' uses external data; load the model from its file`);
        externalFiles.add(resolveLocation(options.modelDir, externalRef(t, file).location, file));
      }
      const storage = floatStorageOf(t.dataType);
      if (storage) {
        weights.push(extractWeight(t, storage, file, reader, options.allocate));
        releaseData(t);
      } else if (isExternal(t)) {
        inlineExternal(t, file, reader as ExternalDataReader);
      } else if (t.rawData.length > 0) {
        t.rawData = new Uint8Array(t.rawData); // a copy, detached from the file buffer so that can be freed
      }
    }
  } finally {
    reader?.close();
  }
  weights.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { file, identity: identityHash(bytes, [...externalFiles].sort()), opset, proto, weights, io };
}

function decode(bytes: Uint8Array, file: string): onnxTypes.Model {
  let proto: onnxTypes.Model;
  try {
    proto = decodeModel(bytes);
  } catch (e) {
    throw new ModelError(file, `not a valid ONNX model: the file is corrupt or truncated (${(e as Error).message})`);
  }
  if (!proto.graph || proto.graph.node.length === 0 || toNumber(proto.irVersion) <= 0 || proto.opsetImport.length === 0) {
    throw new ModelError(file, 'not an ONNX model (no graph, IR version or opset import)');
  }
  return proto;
}

function elementCount(t: onnxTypes.Tensor): number {
  return t.dims.reduce<number>((n, d) => n * toNumber(d), 1);
}

function extractWeight(
  t: onnxTypes.Tensor,
  storage: FloatStorage,
  file: string,
  reader: ExternalDataReader | null,
  allocate: LoadOptions['allocate'],
): FloatWeight {
  const dims = t.dims.map(toNumber);
  const count = elementCount(t);
  const spec: WeightSpec = { name: t.name, dims, storage };
  const data = allocate ? allocate(spec, count) : new Float32Array(count);
  if (data.length !== count) throw new Error(`allocate returned ${data.length} floats for '${t.name}', expected ${count}`);
  const byteSize = count * bytesPerElement(storage);
  if (isExternal(t)) {
    if (storage === 'float32') {
      (reader as ExternalDataReader).read(t.name, externalRef(t, file), byteSize, new Uint8Array(data.buffer, data.byteOffset, byteSize));
    } else {
      const raw = new Uint8Array(byteSize);
      (reader as ExternalDataReader).read(t.name, externalRef(t, file), byteSize, raw);
      decodeFloats(raw, storage, data);
    }
  } else if (t.rawData.length > 0) {
    if (t.rawData.length !== byteSize) throw new ModelError(file, `initializer '${t.name}' has ${t.rawData.length} bytes, its shape needs ${byteSize}`);
    decodeFloats(t.rawData, storage, data);
  } else if (storage === 'float32') {
    if (t.floatData.length !== count) throw new ModelError(file, `initializer '${t.name}' has ${t.floatData.length} values, its shape needs ${count}`);
    data.set(t.floatData);
  } else {
    if (t.int32Data.length !== count) throw new ModelError(file, `initializer '${t.name}' has ${t.int32Data.length} values, its shape needs ${count}`);
    decodeHalfWords(t.int32Data, storage, data);
  }
  return { ...spec, data };
}

function releaseData(t: onnxTypes.Tensor): void {
  t.rawData = new Uint8Array(0);
  t.floatData = [];
  t.int32Data = [];
  t.externalData = [];
  t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
}

/** Non-float initializers stored externally are copied inline (they are small: shapes, index tables). */
function inlineExternal(t: onnxTypes.Tensor, file: string, reader: ExternalDataReader): void {
  const ref = externalRef(t, file);
  if (ref.length === null) throw new ModelError(file, `initializer '${t.name}' is external without a length`);
  const raw = new Uint8Array(ref.length);
  reader.read(t.name, ref, ref.length, raw);
  t.rawData = raw;
  t.externalData = [];
  t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
}

function identityHash(modelBytes: Uint8Array, externalFiles: string[]): string {
  const hash = createHash('sha256').update(modelBytes);
  const chunk = Buffer.allocUnsafe(1 << 24);
  for (const path of externalFiles) {
    const fd = openSync(path, 'r');
    try {
      for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0; ) hash.update(chunk.subarray(0, n));
    } finally {
      closeSync(fd);
    }
  }
  return hash.digest('hex');
}
