// Writes a fine-tuned model as a standard ONNX file: the base model's graph and interface, with the
// given float32 weights stored as float32 initializers (float16 storage would erase the small updates
// of fine-tuning). Large models put their weights in an external-data file beside the model.
import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { substituteFloatSources } from './float-sources';
import type { LoadedModel } from './load';
import { DataType, decodeModel, encodeModel, onnx, rawTensor, type onnxTypes } from './onnx';
import { float32Bytes } from './tensor-data';

/** Weights above this many bytes go to external data (a protobuf message must stay under 2 GiB). */
export const EXTERNAL_DATA_THRESHOLD = 1.8e9;
const EXTERNAL_ALIGNMENT = 4096;

export interface ExportOptions {
  /** Total weight bytes above which an external-data file is written; default 1.8e9. */
  externalDataThreshold?: number;
}

export interface ExportResult {
  path: string;
  /** Path of the external-data file, or null when every tensor is inline. */
  externalDataPath: string | null;
  weightBytes: number;
}

export function exportModel(
  model: LoadedModel,
  weights: ReadonlyMap<string, Float32Array>,
  outPath: string,
  options: ExportOptions = {},
): ExportResult {
  const proto = decodeModel(encodeModel(model.proto));
  const graph = proto.graph;
  const sources = substituteFloatSources(graph, model.weights);
  const names = new Set(model.weights.map((w) => w.name));
  const kept = graph.initializer.filter((t) => !names.has(t.name));
  // IR < 4 lists initializers among the inputs; the float32 sources take their place there.
  const inputIndex = new Map(graph.input.map((v, i) => [v.name, i]));

  let weightBytes = 0;
  const tensors: { tensor: onnxTypes.Tensor; data: Float32Array }[] = [];
  for (const w of model.weights) {
    const data = weights.get(w.name);
    const size = w.dims.reduce((a, b) => a * b, 1);
    if (!data || data.length !== size) throw new Error(`export: weight '${w.name}' needs ${size} floats, got ${data ? data.length : 'none'}`);
    const source = sources.get(w.name) as string;
    const tensor = rawTensor(source, DataType.FLOAT, w.dims, new Uint8Array(0));
    tensors.push({ tensor, data });
    weightBytes += data.byteLength;
    const at = inputIndex.get(w.name);
    if (at !== undefined) graph.input[at] = { ...graph.input[at], name: source, type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: w.dims.map((d) => ({ dimValue: d })) } } } };
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
  for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
}
