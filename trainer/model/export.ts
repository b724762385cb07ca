// Writes a fine-tuned model as a standard ONNX file: the base model's graph and interface, with the
// given float32 weights stored as float32 initializers (float16 storage would erase the small updates
// of fine-tuning). A tied embedding's folded transposed copy is computed from the one exported tensor.
// Quantized weights are written as float32 (default) or quantized again with the file's own scales and
// zero points. Large models put their weights in an external-data file beside the model.
import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { LoadedModel, WeightSpec } from './load';
import { DataType, decodeModel, encodeModel, onnx, rawTensor, type onnxTypes } from './onnx';
import { decodeFloats, float32Bytes, floatStorageOf } from './tensor-data';
import { quantizedValues, quantizeLinear, quantizeNBits } from './quantized';
import { substituteWeightSources } from './weight-sources';

/** Weights above this many bytes go to external data (a protobuf message must stay under 2 GiB). */
export const EXTERNAL_DATA_THRESHOLD = 1.8e9;
const EXTERNAL_ALIGNMENT = 4096;

export interface ExportOptions {
  /** Total weight bytes above which an external-data file is written; default 1.8e9. */
  externalDataThreshold?: number;
  /**
   * Quantized weights: 'float32' (default) writes their trained float32 values and drops the
   * dequantization; 'requantize' keeps the file's scheme and quantizes them again with its scales and
   * zero points (small fine-tuning updates mostly round away: docs/models.md).
   */
  quantized?: 'float32' | 'requantize';
}

export interface ExportResult {
  path: string;
  /** Path of the external-data file, or null when every tensor is inline. */
  externalDataPath: string | null;
  weightBytes: number;
}

export function exportModel(model: LoadedModel, weights: ReadonlyMap<string, Float32Array>, outPath: string, options: ExportOptions = {}): ExportResult {
  const proto = decodeModel(encodeModel(model.proto));
  const graph = proto.graph;
  // IR < 4 lists initializers among the inputs; the float32 sources take their place there.
  const listedAsInputs = new Set(graph.input.map((v) => v.name));
  const requantize = options.quantized === 'requantize';
  const sources = substituteWeightSources(graph, model.weights, { keepQuantized: requantize });
  const kept = graph.initializer;

  let weightBytes = 0;
  const tensors: { tensor: onnxTypes.Tensor; data: Float32Array }[] = [];
  for (const w of model.weights) {
    const data = weights.get(w.name);
    const size = w.dims.reduce((a, b) => a * b, 1);
    if (!data || data.length !== size) throw new Error(`export: weight '${w.name}' needs ${size} floats, got ${data ? data.length : 'none'}`);
    const source = sources.get(w.name);
    if (source === undefined) {
      requantizeInto(graph, w, data);
      continue;
    }
    const tensor = rawTensor(source, DataType.FLOAT, w.dims, new Uint8Array(0));
    tensors.push({ tensor, data });
    weightBytes += data.byteLength;
    if (listedAsInputs.has(w.name))
      graph.input.push({
        name: source,
        type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: w.dims.map((d) => ({ dimValue: d })) } } },
      } as onnxTypes.ValueInfo);
  }
  const external = weightBytes > (options.externalDataThreshold ?? EXTERNAL_DATA_THRESHOLD);
  mkdirSync(dirname(outPath), { recursive: true });
  const dataName = `${basename(outPath)}.data`;
  const dataPath = `${outPath}.data`;
  if (external) writeExternal(tensors, `${dataPath}.tmp`, dataName);
  else for (const { tensor, data } of tensors) tensor.rawData = float32Bytes(data);
  graph.initializer = [...kept, ...tensors.map((t) => t.tensor)];

  const fd = openSync(`${outPath}.tmp`, 'w');
  try {
    writeAll(fd, encodeModel(proto));
  } finally {
    closeSync(fd);
  }
  if (external) renameSync(`${dataPath}.tmp`, dataPath);
  else rmSync(dataPath, { force: true });
  renameSync(`${outPath}.tmp`, outPath);
  return { path: outPath, externalDataPath: external ? dataPath : null, weightBytes };
}

/** Writes `data` back into a quantized weight's own initializer with the file's scales and zero points. */
function requantizeInto(graph: onnxTypes.Graph, w: WeightSpec, data: Float32Array): void {
  const q = w.quantized;
  if (!q) throw new Error(`export: weight '${w.name}' has no float32 source`);
  const find = (name: string): onnxTypes.Tensor => {
    const t = graph.initializer.find((x) => x.name === name);
    if (!t) throw new Error(`export: initializer '${name}' of quantized weight '${w.name}' is missing`);
    return t;
  };
  const floats = (t: onnxTypes.Tensor): Float32Array => {
    const storage = floatStorageOf(t.dataType);
    const count = t.dims.reduce<number>((n, d) => n * Number(d), 1);
    const out = new Float32Array(count);
    if (!storage) throw new Error(`export: '${t.name}' is not floating point`);
    if (t.rawData.length > 0) decodeFloats(t.rawData, storage, out);
    else out.set(t.floatData);
    return out;
  };
  const ints = (t: onnxTypes.Tensor): Uint8Array => (t.rawData.length > 0 ? new Uint8Array(t.rawData) : Uint8Array.from(t.int32Data, (v) => v & 0xff));
  let target: onnxTypes.Tensor;
  let bytes: Uint8Array;
  if (q.kind === 'dequantize-linear') {
    target = find(q.quantized);
    const zp = q.zeroPoint ? quantizedValues(ints(find(q.zeroPoint)), q.dataType) : null;
    bytes = quantizeLinear(data, floats(find(q.scale)), zp, w.dims, q.axis, q.dataType);
  } else {
    target = find(q.packed);
    const zpTensor = q.zeroPoints ? find(q.zeroPoints.name) : null;
    const zp = zpTensor ? (q.zeroPoints?.packed ? ints(zpTensor) : floats(zpTensor)) : null;
    bytes = quantizeNBits(q, data, floats(find(q.scales)), zp);
  }
  target.rawData = bytes;
  target.int32Data = [];
}

function writeExternal(tensors: { tensor: onnxTypes.Tensor; data: Float32Array }[], tmpPath: string, location: string): void {
  const fd = openSync(tmpPath, 'w');
  try {
    let offset = 0;
    for (const { tensor, data } of tensors) {
      const padding = (EXTERNAL_ALIGNMENT - (offset % EXTERNAL_ALIGNMENT)) % EXTERNAL_ALIGNMENT;
      if (padding) writeAll(fd, new Uint8Array(padding));
      offset += padding;
      writeAll(fd, float32Bytes(data));
      tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      tensor.externalData = [
        { key: 'location', value: location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(data.byteLength) },
      ];
      offset += data.byteLength;
    }
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
}
