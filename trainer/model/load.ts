// Loads an ONNX causal LM: decodes the protobuf, checks the interface, decides which tensors are its
// trainable parameters (trainable.ts: by how the graph reads them), extracts each as a float32 master
// copy and computes the model identity hash.
//
// Parameters are float32 / float16 / bfloat16 initializers in weight slots (MatMul, Gemm, Conv, Gather,
// normalisation, biases), int8/uint8 weights behind DequantizeLinear and MatMulNBits weights (trained
// through their dequantized values), and one tensor for an embedding and its folded transposed copy.
// Everything else (rotary caches, masks, scalars, Constant nodes, double or sparse tensors) stays in the
// graph as it is.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { once } from 'node:events';
import { dirname } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { ModelError } from './errors';
import { ExternalDataReader, externalRef, isExternal, resolveLocation } from './external-data';
import { allNodes } from './float-sources';
import { DataType, dataTypeName, decodeModel, defaultOpset, getIntAttr, onnx, onnxTypes, toNumber } from './onnx';
import { dequantizeLinear, dequantizeNBits, describeQuantization, quantizedValues, type QuantizedSource } from './quantized';
import { bytesPerElement, decodeFloats, floatStorageOf, type FloatStorage } from './tensor-data';
import { globToRegExp, indexGraph, looksRotary, parameterRole, type Selection } from './trainable';
import { FileWeightReader, WeightFile } from './weight-reader';
import { describeCausalLm, type CausalLmIo } from './validate';
import { errorMessage } from '../../protocol/errors';

export interface WeightSpec {
  name: string;
  dims: number[];
  /** How the base model stores it; the master copy is always float32. */
  storage: FloatStorage;
  /** Why it is trained: the graph slots that read it (for `fedkseed inspect`). */
  reason?: string;
  /** Stored quantized: the graph reads it through this dequantization. */
  quantized?: QuantizedSource;
  /** Initializers holding this weight transposed (a constant-folded LM head of a tied embedding). */
  transposedCopies?: string[];
}

export interface FloatWeight extends WeightSpec {
  /**
   * The float32 master values; whoever takes them over (the engine's ParameterSet) may release them. Empty
   * when the load deferred them (LoadOptions.defer): `source` reads them.
   */
  data: Float32Array;
  /**
   * Reads the weight's base values back from the model's files, when they are stored there as raw float
   * bytes (not for quantized weights or typed-field tensors): the engine then holds no copy of w0.
   */
  source?: FileWeightReader;
}

/** A float tensor (or a quantized one) that is not trained, and why. */
export interface ConstantInfo {
  name: string;
  dims: number[];
  type: string;
  reason: string;
}

export interface LoadedModel {
  /** Path (or label, for bytes) the model came from; used in error messages. */
  file: string;
  /**
   * SHA-256 (hex) of the model file bytes followed by its external data files (sorted by location). When
   * the trainable tensors are not simply every float initializer (constants left alone, quantized or tied
   * weights, a user's selection), the layout is hashed in too, so coefficients made for one layout are
   * never applied to another (docs/zo-engine.md).
   */
  identity: string;
  opset: number;
  /** The model with every tensor inline; trained initializers keep name/type/dims but their data is released. */
  proto: onnxTypes.Model;
  /** Float32 master copies of the trainable tensors, sorted by name (code-unit order). */
  weights: FloatWeight[];
  /** Float tensors that are not trained (rotary caches, masks, scalars, frozen weights). */
  constants: ConstantInfo[];
  io: CausalLmIo;
  /** Vocabulary size: from the logits' shape, else from the rows of the input embedding; null if neither says. */
  vocabSize: number | null;
}

export interface LoadOptions {
  /**
   * Where to put each master copy (e.g. a view into WebAssembly memory); must return exactly `length`
   * floats. Default: a fresh Float32Array.
   */
  allocate?: (spec: WeightSpec, length: number) => Float32Array;
  /** Which of the model's parameters to train (default: all of them). */
  select?: Selection;
  /**
   * Leave `data` empty for every weight that has a `source` (its values are read from the files when
   * wanted), so loading allocates no master copies: the engine reads them straight into its own memory.
   */
  defer?: boolean;
}

/** Reads and validates `path` (and its external data files). */
export async function loadModel(path: string, options: LoadOptions = {}): Promise<LoadedModel> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new ModelError(path, `cannot be read (${errorMessage(e)})`);
  }
  const model = parseModel(bytes, path, { ...options, modelDir: dirname(path), sourceFile: path });
  await releaseFileBuffer(model.proto, bytes);
  return model;
}

/**
 * Frees the file's bytes now instead of at some later garbage collection: for a model with its weights
 * inline they are the size of the model, and the engine is about to allocate the weights itself. Byte
 * fields of the message that still view the buffer are copied first; the buffer's contents then move into
 * a message on a channel that is closed unread, which releases them.
 */
async function releaseFileBuffer(proto: onnxTypes.Model, bytes: Buffer): Promise<void> {
  const buffer = bytes.buffer;
  if (!(buffer instanceof ArrayBuffer) || bytes.byteLength < 1 << 20 || bytes.byteOffset !== 0 || buffer.byteLength !== bytes.byteLength) return;
  const pending: object[] = [proto];
  const own = (v: unknown): v is Uint8Array => v instanceof Uint8Array && v.buffer === buffer;
  while (pending.length > 0) {
    const node = pending.pop() as Record<string, unknown>;
    for (const key of Object.keys(node)) {
      const v = node[key];
      if (own(v)) node[key] = v.slice();
      else if (v !== null && typeof v === 'object' && !ArrayBuffer.isView(v)) pending.push(v);
    }
  }
  const { port1, port2 } = new MessageChannel();
  const closed = Promise.all([once(port1, 'close'), once(port2, 'close')]);
  port1.postMessage(null, [buffer]);
  port1.close();
  port2.close();
  await closed;
}

/**
 * Decodes model bytes. `modelDir` is needed only when tensors are stored externally; without it such a
 * model is refused.
 */
export function parseModel(bytes: Uint8Array, file: string, options: LoadOptions & { modelDir?: string; sourceFile?: string } = {}): LoadedModel {
  const proto = decode(bytes, file);
  const graph = proto.graph;
  const io = describeCausalLm(graph, file);
  const opset = defaultOpset(proto);
  const reader = options.modelDir !== undefined ? new ExternalDataReader(options.modelDir, file) : null;
  const externalFiles = new Set<string>();
  const seen = new Set<string>();
  for (const t of graph.initializer) {
    if (seen.has(t.name)) throw new ModelError(file, `initializer '${t.name}' is defined twice`);
    seen.add(t.name);
    if (isExternal(t)) {
      if (!reader || options.modelDir === undefined) throw new ModelError(file, `initializer '${t.name}' uses external data; load the model from its file`);
      externalFiles.add(resolveLocation(options.modelDir, externalRef(t, file).location, file));
    }
  }
  let weights: FloatWeight[];
  let constants: ConstantInfo[];
  let legacy: boolean;
  try {
    const tensors = new TensorSource(file, reader);
    const plan = planParameters(graph, tensors, file, options.select);
    ({ constants, legacy } = plan);
    const sources = weightSources(plan, bytes, file, options);
    weights = plan.weights.map((spec) => {
      const source = sources.get(spec.name);
      if (source && options.defer) return { ...spec, data: new Float32Array(0), source };
      const w = extractWeight(spec, plan.initializers, tensors, file, options.allocate);
      return source ? { ...w, source } : w;
    });
    // The trained initializers' data now lives in the masters; everything else stays inline in the proto.
    const released = new Set(plan.weights.flatMap((w) => (w.quantized ? [] : [w.name, ...(w.transposedCopies ?? [])])));
    for (const t of graph.initializer) {
      if (released.has(t.name)) releaseData(t);
      else if (isExternal(t)) inlineExternal(t, file, reader as ExternalDataReader);
      else if (t.rawData.length > 0) t.rawData = new Uint8Array(t.rawData); // a copy, detached from the file buffer so that can be freed
    }
  } finally {
    reader?.close();
  }
  weights.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const fileHash = identityHash(bytes, [...externalFiles].sort());
  const identity = legacy ? fileHash : layoutIdentity(fileHash, weights);
  return { file, identity, opset, proto, weights, constants, io, vocabSize: io.vocab ?? embeddingRows(graph, io, weights) };
}

/** The identity of a model trained with a layout other than "every float initializer": file hash + layout. */
function layoutIdentity(fileHash: string, weights: WeightSpec[]): string {
  const hash = createHash('sha256').update(`fedkseed-layout-1\n${fileHash}\n`);
  for (const w of weights) hash.update(`${w.name}\t${w.dims.join('x')}\n`);
  return hash.digest('hex');
}

/** Rows of the embedding that input_ids index, when the logits do not state the vocabulary. */
function embeddingRows(graph: onnxTypes.Graph, io: CausalLmIo, weights: WeightSpec[]): number | null {
  const index = indexGraph(graph);
  const names = new Set([io.inputIds.name]);
  for (const name of [...names]) for (const { node } of index.consumers.get(name) ?? []) if (node.opType === 'Cast') names.add(node.output[0]);
  for (const name of names) {
    for (const { node, index: i } of index.consumers.get(name) ?? []) {
      if (node.opType !== 'Gather' || i !== 1) continue;
      const w = weights.find((x) => x.name === node.input[0] || (x.quantized?.kind === 'dequantize-linear' && x.quantized.output === node.input[0]));
      if (w && w.dims.length === 2) return w.dims[0];
      const t = graph.initializer.find((x) => x.name === node.input[0]);
      if (t && t.dims.length === 2) return toNumber(t.dims[0]);
    }
  }
  return null;
}

function decode(bytes: Uint8Array, file: string): onnxTypes.Model {
  let proto: onnxTypes.Model;
  try {
    proto = decodeModel(bytes);
  } catch (e) {
    throw new ModelError(file, `not a valid ONNX model: the file is corrupt or truncated (${errorMessage(e)})`);
  }
  if (!proto.graph || proto.graph.node.length === 0 || toNumber(proto.irVersion) <= 0 || proto.opsetImport.length === 0) {
    throw new ModelError(file, 'not an ONNX model (no graph, IR version or opset import)');
  }
  return proto;
}

function elementCount(t: onnxTypes.Tensor): number {
  return t.dims.reduce<number>((n, d) => n * toNumber(d), 1);
}

const INT8 = DataType.INT8;
const UINT8 = DataType.UINT8;

/** Reads initializer values wherever they are stored: raw bytes, typed fields or external data. */
class TensorSource {
  constructor(
    private readonly file: string,
    private readonly reader: ExternalDataReader | null,
  ) {}

  /** Little-endian bytes of `t` (a copy or a view). */
  bytes(t: onnxTypes.Tensor, bytesPer: number): Uint8Array {
    const size = elementCount(t) * bytesPer;
    if (isExternal(t)) {
      const out = new Uint8Array(size);
      (this.reader as ExternalDataReader).read(t.name, externalRef(t, this.file), size, out);
      return out;
    }
    if (t.rawData.length > 0) {
      if (t.rawData.length !== size) throw new ModelError(this.file, `initializer '${t.name}' has ${t.rawData.length} bytes, its shape needs ${size}`);
      return t.rawData;
    }
    const count = elementCount(t);
    if (t.dataType === DataType.FLOAT) return new Uint8Array(this.checked(t, Float32Array.from(t.floatData), count).buffer);
    const words = this.checked(t, t.int32Data, count);
    if (bytesPer === 1) return Uint8Array.from(words, (v) => v & 0xff);
    return new Uint8Array(Uint16Array.from(words).buffer);
  }

  /** Float values of a float32/float16/bfloat16 initializer. */
  floats(t: onnxTypes.Tensor, out?: Float32Array): Float32Array {
    const storage = floatStorageOf(t.dataType);
    if (!storage) throw new ModelError(this.file, `initializer '${t.name}' must be floating point, found ${dataTypeName(t.dataType)}`);
    const data = out ?? new Float32Array(elementCount(t));
    decodeFloats(this.bytes(t, bytesPerElement(storage)), storage, data);
    return data;
  }

  /** Values of an int8/uint8 initializer. */
  ints(t: onnxTypes.Tensor): Int8Array | Uint8Array {
    return quantizedValues(new Uint8Array(this.bytes(t, 1)), t.dataType);
  }

  private checked<T extends ArrayLike<number>>(t: onnxTypes.Tensor, values: T, count: number): T {
    if (values.length !== count) throw new ModelError(this.file, `initializer '${t.name}' has ${values.length} values, its shape needs ${count}`);
    return values;
  }
}

interface Plan {
  weights: WeightSpec[];
  initializers: Map<string, onnxTypes.Tensor>;
  constants: ConstantInfo[];
  /** The layout is "every float initializer, as itself": the identity stays the file hash. */
  legacy: boolean;
}

interface Candidate {
  spec: WeightSpec;
  /** Why it is a parameter; null: a constant (then `constantReason`). */
  role: string | null;
  constantReason: string;
  /** Tied copy of this embedding's name. */
  copyOf?: string;
  float: boolean;
}

/** Decides the trainable tensors: graph analysis, tied copies, then the user's selection. */
function planParameters(graph: onnxTypes.Graph, tensors: TensorSource, file: string, select: Selection | undefined): Plan {
  const index = indexGraph(graph);
  const inits = new Map(graph.initializer.map((t) => [t.name, t]));
  const candidates: Candidate[] = [];
  const unsupported: ConstantInfo[] = [];
  const constantReason = (readers: string[], size: number): string =>
    size <= 1 ? 'scalar' : readers.length === 0 ? 'not read by the graph' : `read by ${readers.join(', ')}: not a weight slot`;

  for (const t of graph.initializer) {
    const storage = floatStorageOf(t.dataType);
    if (!storage) continue;
    const dims = t.dims.map(toNumber);
    const { roles, readers, rotary } = parameterRole(t.name, dims, index, { rotaryLike: () => looksRotary(tensors.floats(t), dims) });
    const quantizationOnly = readers.length > 0 && readers.every((r) => r === 'DequantizeLinear' || r === 'MatMulNBits');
    candidates.push({
      spec: { name: t.name, dims, storage, reason: roles.join(' + ') },
      role: roles.length > 0 ? roles.join(' + ') : null,
      constantReason: quantizationOnly
        ? 'quantization scale'
        : rotary
          ? 'rotary cache'
          : constantReason(
              readers,
              dims.reduce((a, b) => a * b, 1),
            ),
      float: true,
    });
  }

  for (const node of allNodes(graph)) {
    if (node.opType === 'DequantizeLinear' && (node.domain === '' || node.domain === 'ai.onnx')) {
      const q = inits.get(node.input[0]);
      const scale = inits.get(node.input[1]);
      const zp = node.input[2] ? inits.get(node.input[2]) : undefined;
      if (!q || !scale || (node.input[2] && !zp)) continue;
      const dims = q.dims.map(toNumber);
      const name = node.output[0];
      const { roles, readers } = parameterRole(name, dims, index, { rotaryLike: () => false });
      const scaleSize = elementCount(scale);
      const storage = floatStorageOf(scale.dataType);
      let problem: string | null = null;
      if (q.dataType !== INT8 && q.dataType !== UINT8) problem = `${dataTypeName(q.dataType)} DequantizeLinear is not trained (int8 and uint8 are)`;
      else if ((getIntAttr(node, 'block_size') ?? 0) > 0) problem = 'blocked DequantizeLinear is not trained';
      else if (!storage) problem = `DequantizeLinear with ${dataTypeName(scale.dataType)} scales is not trained`;
      if (roles.length === 0 || problem) {
        unsupported.push({ name, dims, type: dataTypeName(q.dataType), reason: problem ?? constantReason(readers, elementCount(q)) });
        continue;
      }
      const rawAxis = getIntAttr(node, 'axis') ?? 1;
      const axis = scaleSize <= 1 && scale.dims.length <= 1 ? null : rawAxis < 0 ? rawAxis + dims.length : rawAxis;
      if (axis !== null && dims[axis] !== scaleSize)
        throw new ModelError(file, `DequantizeLinear of '${q.name}': ${scaleSize} scales for axis ${axis} of [${dims.join(', ')}]`);
      const quantized: QuantizedSource = {
        kind: 'dequantize-linear',
        output: name,
        quantized: q.name,
        scale: scale.name,
        zeroPoint: zp?.name ?? null,
        axis,
        dataType: q.dataType,
      };
      candidates.push({
        spec: { name, dims, storage: storage as FloatStorage, reason: `${roles.join(' + ')} (${describeQuantization(quantized)})`, quantized },
        role: roles.join(' + '),
        constantReason: '',
        float: false,
      });
    } else if (node.opType === 'MatMulNBits' && node.domain === 'com.microsoft') {
      const packed = inits.get(node.input[1]);
      const scales = inits.get(node.input[2]);
      if (!packed || !scales || candidates.some((c) => c.spec.name === packed.name)) continue;
      const k = getIntAttr(node, 'K') ?? 0;
      const n = getIntAttr(node, 'N') ?? 0;
      const bits = getIntAttr(node, 'bits') ?? 4;
      const blockSize = getIntAttr(node, 'block_size') ?? 0;
      const zpName = node.input[3] || '';
      const zp = zpName ? inits.get(zpName) : undefined;
      const storage = floatStorageOf(scales.dataType);
      let problem: string | null = null;
      if (node.input[4]) problem = 'MatMulNBits with g_idx (act-order) is not trained';
      else if (![2, 4, 8].includes(bits) || blockSize < 1 || (blockSize * bits) % 8 !== 0)
        problem = `MatMulNBits with bits=${bits}, block_size=${blockSize} is not trained`;
      else if (!storage || (zpName && !zp)) problem = 'MatMulNBits without constant scales/zero points is not trained';
      if (problem) {
        unsupported.push({ name: packed.name, dims: [k, n], type: `${bits}-bit`, reason: problem });
        continue;
      }
      const quantized: QuantizedSource = {
        kind: 'matmul-nbits',
        packed: packed.name,
        scales: scales.name,
        zeroPoints: zp ? { name: zp.name, packed: zp.dataType === UINT8 } : null,
        k,
        n,
        bits,
        blockSize,
      };
      candidates.push({
        spec: { name: packed.name, dims: [k, n], storage: storage as FloatStorage, reason: `matmul weight (${describeQuantization(quantized)})`, quantized },
        role: 'matmul weight',
        constantReason: '',
        float: false,
      });
    }
  }
  for (const t of graph.initializer) {
    if (t.dataType !== INT8 && t.dataType !== UINT8) continue;
    const readers = (index.consumers.get(t.name) ?? [])
      .map((c) => c.node.opType)
      .filter((op) => ['MatMulInteger', 'ConvInteger', 'QLinearMatMul', 'QLinearConv', 'GatherBlockQuantized', 'DynamicQuantizeMatMul'].includes(op));
    if (readers.length > 0 && t.dims.length >= 2) {
      unsupported.push({
        name: t.name,
        dims: t.dims.map(toNumber),
        type: dataTypeName(t.dataType),
        reason: `read by ${[...new Set(readers)].join(', ')} (activation-quantized): not trained; use a float or weight-only quantized variant`,
      });
    }
  }

  findTransposedCopies(candidates, inits, tensors);
  const chosen = applySelection(candidates, select, file);
  const chosenNames = new Set(chosen.map((c) => c.spec.name));
  const weights = chosen.map((c) => ({
    ...c.spec,
    transposedCopies: candidates.filter((x) => x.copyOf === c.spec.name).map((x) => x.spec.name),
  }));
  for (const w of weights) if (w.transposedCopies.length === 0) delete (w as WeightSpec).transposedCopies;
  const constants: ConstantInfo[] = [
    ...candidates
      .filter((c) => !chosenNames.has(c.spec.name) && !(c.copyOf && chosenNames.has(c.copyOf)))
      .map((c) => ({
        name: c.spec.name,
        dims: c.spec.dims,
        type: c.spec.quantized ? describeQuantization(c.spec.quantized) : c.spec.storage,
        reason: c.copyOf ? `transposed copy of ${c.copyOf}, which is frozen` : c.role ? 'frozen by the selection' : c.constantReason,
      })),
    ...unsupported,
  ];
  const floatNames = candidates.filter((c) => c.float).map((c) => c.spec.name);
  const legacy = weights.every((w) => !w.quantized && !w.transposedCopies) && weights.length === floatNames.length;
  if (weights.length === 0 && (select?.trainable?.length || select?.freeze?.length))
    throw new ModelError(file, 'no trainable parameters: the selection leaves nothing to train');
  return { weights, initializers: inits, constants, legacy };
}

/** A matmul weight equal to an embedding transposed is the same parameter (a folded tied LM head). */
function findTransposedCopies(candidates: Candidate[], inits: Map<string, onnxTypes.Tensor>, tensors: TensorSource): void {
  const floats = candidates.filter((c) => c.float && c.role !== null && c.spec.dims.length === 2);
  const embeddings = floats.filter((c) => c.role?.includes('embedding'));
  for (const e of embeddings) {
    const [rows, cols] = e.spec.dims;
    let values: Float32Array | null = null;
    for (const m of floats) {
      if (m === e || m.copyOf || m.role?.includes('embedding') || !m.role?.includes('matmul weight')) continue;
      if (m.spec.dims[0] !== cols || m.spec.dims[1] !== rows) continue;
      values ??= tensors.floats(inits.get(e.spec.name) as onnxTypes.Tensor);
      const other = tensors.floats(inits.get(m.spec.name) as onnxTypes.Tensor);
      let same = true;
      for (let r = 0; r < rows && same; r++)
        for (let c = 0; c < cols; c++)
          if (!Object.is(values[r * cols + c], other[c * rows + r])) {
            same = false;
            break;
          }
      if (!same) continue;
      m.copyOf = e.spec.name;
      e.spec.reason = `${e.spec.reason} + matmul weight (tied: ${m.spec.name} holds it transposed)`;
    }
  }
}

function applySelection(candidates: Candidate[], select: Selection | undefined, file: string): Candidate[] {
  const selectable = candidates.filter((c) => !c.copyOf);
  const trainable = (select?.trainable ?? []).map((g) => ({ glob: g, re: globToRegExp(g) }));
  const freeze = (select?.freeze ?? []).map((g) => ({ glob: g, re: globToRegExp(g) }));
  for (const { glob, re } of [...trainable, ...freeze]) {
    if (!selectable.some((c) => re.test(c.spec.name)))
      throw new ModelError(file, `the pattern '${glob}' matches no tensor of the model (see fedkseed inspect)`);
  }
  const picked =
    trainable.length === 0 ? selectable.filter((c) => c.role !== null) : selectable.filter((c) => trainable.some(({ re }) => re.test(c.spec.name)));
  for (const c of picked) if (c.role === null) c.spec = { ...c.spec, reason: `chosen by the selection (${c.constantReason})` };
  return picked.filter((c) => !freeze.some(({ re }) => re.test(c.spec.name)));
}

function extractWeight(
  spec: WeightSpec,
  inits: Map<string, onnxTypes.Tensor>,
  tensors: TensorSource,
  file: string,
  allocate: LoadOptions['allocate'],
): FloatWeight {
  const count = spec.dims.reduce((a, b) => a * b, 1);
  const data = allocate ? allocate(spec, count) : new Float32Array(count);
  if (data.length !== count) throw new Error(`allocate returned ${data.length} floats for '${spec.name}', expected ${count}`);
  const q = spec.quantized;
  const get = (name: string): onnxTypes.Tensor => {
    const t = inits.get(name);
    if (!t) throw new ModelError(file, `initializer '${name}' is missing`);
    return t;
  };
  if (!q) {
    tensors.floats(get(spec.name), data);
  } else if (q.kind === 'dequantize-linear') {
    const zp = q.zeroPoint ? tensors.ints(get(q.zeroPoint)) : null;
    dequantizeLinear(tensors.ints(get(q.quantized)), tensors.floats(get(q.scale)), zp, spec.dims, q.axis, data);
  } else {
    const zpTensor = q.zeroPoints ? get(q.zeroPoints.name) : null;
    const zp = zpTensor ? (q.zeroPoints?.packed ? new Uint8Array(tensors.bytes(zpTensor, 1)) : tensors.floats(zpTensor)) : null;
    dequantizeNBits(q, new Uint8Array(tensors.bytes(get(q.packed), 1)), tensors.floats(get(q.scales)), zp, data);
  }
  return { ...spec, data };
}

/**
 * Readers of the weights whose base values lie in the files as raw float bytes: external data, or inline
 * raw_data of a model read from its file (the decoded message's bytes are views of the file's buffer, so
 * their offset in it is their offset in the file).
 */
function weightSources(plan: Plan, bytes: Uint8Array, file: string, options: { modelDir?: string; sourceFile?: string }): Map<string, FileWeightReader> {
  const files = new Map<string, WeightFile | null>();
  /** null: a file that cannot be stat'ed (extraction reports it). */
  const fileAt = (path: string): WeightFile | null => {
    if (!files.has(path)) {
      try {
        files.set(path, WeightFile.at(path, file));
      } catch {
        files.set(path, null);
      }
    }
    return files.get(path) ?? null;
  };
  const out = new Map<string, FileWeightReader>();
  for (const spec of plan.weights) {
    if (spec.quantized) continue;
    const t = plan.initializers.get(spec.name);
    const storage = t ? floatStorageOf(t.dataType) : null;
    if (!t || !storage) continue;
    const count = elementCount(t);
    const size = count * bytesPerElement(storage);
    if (isExternal(t)) {
      if (options.modelDir === undefined) continue;
      const ref = externalRef(t, file);
      const data = fileAt(resolveLocation(options.modelDir, ref.location, file));
      if (data === null || (ref.length !== null && ref.length !== size) || ref.offset + size > data.size) continue; // extraction reports it
      out.set(spec.name, new FileWeightReader(data, ref.offset, storage, count));
    } else if (options.sourceFile !== undefined && t.rawData.length === size && size > 0 && t.rawData.buffer === bytes.buffer) {
      const data = fileAt(options.sourceFile);
      if (data !== null) out.set(spec.name, new FileWeightReader(data, t.rawData.byteOffset - bytes.byteOffset, storage, count));
    }
  }
  return out;
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
      for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0;) hash.update(chunk.subarray(0, n));
    } finally {
      closeSync(fd);
    }
  }
  return hash.digest('hex');
}
