// Checks that a graph has the interface of a causal language model (as torch.onnx.export / Hugging Face
// Optimum / transformers.js write them: without a KV cache, with past key values, or merged with a
// use_cache_branch input) and describes that interface.
import { ModelError } from './errors';
import { DataType, onnxTypes, valueInfoDims, valueInfoElemType, dataTypeName } from './onnx';

export type IndexType = 'int64' | 'int32';

export interface NamedIndexInput {
  name: string;
  type: IndexType;
}

export interface CausalLmIo {
  inputIds: NamedIndexInput;
  attentionMask: NamedIndexInput;
  /** Present when the export takes explicit positions; fed 0..T-1 per row (right padding). */
  positionIds: NamedIndexInput | null;
  logits: string;
  /** ONNX element type of the logits (float32, or float16/bfloat16/double for other exports). */
  logitsType: number;
  /** Vocabulary size when the export states it in the logits shape. */
  vocab: number | null;
  /** KV-cache inputs and outputs of a decoder exported with past key values; null without. */
  cache: CacheIo | null;
}

export interface PastInput {
  name: string;
  /** ONNX element type (float32, float16, …). */
  elemType: number;
  /** Shape with the batch axis (0) and the past-sequence axis as null, every other axis a number. */
  dims: (number | null)[];
  /** The past-sequence axis. */
  sequenceAxis: number;
  /** The output that returns this input extended by the new tokens; null when none matches by name. */
  present: string | null;
}

export interface CacheIo {
  past: PastInput[];
  /** Boolean input choosing the cached branch of a merged decoder (Optimum's use_cache_branch); null if none. */
  useCacheBranch: string | null;
}

const FLOAT_TYPES = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

function isCacheInput(name: string): boolean {
  return /past|present|cache|layer_past|\.key$|\.value$/i.test(name);
}

const USE_CACHE_BRANCH = 'use_cache_branch';

function presentFor(past: string, outputs: Set<string>): string | null {
  for (const candidate of [past.replace(/^past_key_values/, 'present'), past.replace(/^past/, 'present'), past.replace(/past/, 'present')]) {
    if (candidate !== past && outputs.has(candidate)) return candidate;
  }
  return null;
}

/** A past key/value input: floating point, batch first, one symbolic past-sequence axis, the rest numbers. */
function pastInput(v: onnxTypes.ValueInfo, outputs: Set<string>, file: string): PastInput {
  const elemType = valueInfoElemType(v);
  if (!FLOAT_TYPES.has(elemType)) throw new ModelError(file, `KV-cache input '${v.name}' must be floating point, found ${dataTypeName(elemType)}`);
  const dims = valueInfoDims(v);
  if (!dims || dims.length < 3)
    throw new ModelError(
      file,
      `KV-cache input '${v.name}' must have a shape of rank 3 or more [batch, …, past_sequence, …], found ${dims ? `rank ${dims.length}` : 'none'}`,
    );
  const symbolic = dims.map((d, i) => (i > 0 && typeof d !== 'number' ? i : -1)).filter((i) => i > 0);
  const named = symbolic.filter((i) => /past|seq|total|length|cache/i.test(String(dims[i])));
  const sequenceAxis = named.length === 1 ? named[0] : symbolic.length === 1 ? symbolic[0] : -1;
  if (sequenceAxis < 0) {
    throw new ModelError(
      file,
      `cannot tell the past-sequence axis of KV-cache input '${v.name}' (shape [${dims.map((d) => d ?? '?').join(', ')}]); every axis but batch and past sequence must be a number`,
    );
  }
  return {
    name: v.name,
    elemType,
    dims: dims.map((d, i) => (i === 0 || i === sequenceAxis ? null : (d as number))),
    sequenceAxis,
    present: presentFor(v.name, outputs),
  };
}

function indexInput(v: onnxTypes.ValueInfo, file: string): NamedIndexInput {
  const t = valueInfoElemType(v);
  if (t !== DataType.INT64 && t !== DataType.INT32) {
    throw new ModelError(file, `input '${v.name}' must be int64 or int32, found ${dataTypeName(t)}`);
  }
  const dims = valueInfoDims(v);
  if (dims && dims.length !== 2) throw new ModelError(file, `input '${v.name}' must have rank 2 [batch, sequence], found rank ${dims.length}`);
  return { name: v.name, type: t === DataType.INT64 ? 'int64' : 'int32' };
}

/** The causal-LM interface of `graph`, or a ModelError naming what is missing or unexpected. */
export function describeCausalLm(graph: onnxTypes.Graph, file: string): CausalLmIo {
  const initializers = new Set(graph.initializer.map((t) => t.name));
  // IR < 4 lists initializers among the inputs too; those are not fed.
  const inputs = graph.input.filter((v) => !initializers.has(v.name));
  const byName = new Map(inputs.map((v) => [v.name, v]));
  const outputNames = new Set(graph.output.map((v) => v.name));
  const branch = byName.get(USE_CACHE_BRANCH);
  if (branch && valueInfoElemType(branch) !== DataType.BOOL)
    throw new ModelError(file, `input '${USE_CACHE_BRANCH}' must be bool, found ${dataTypeName(valueInfoElemType(branch))}`);
  const past = inputs.filter((v) => v.name !== USE_CACHE_BRANCH && isCacheInput(v.name)).map((v) => pastInput(v, outputNames, file));
  if (branch && past.length === 0) throw new ModelError(file, `input '${USE_CACHE_BRANCH}' without past key value inputs`);
  const cache: CacheIo | null = past.length > 0 ? { past, useCacheBranch: branch ? branch.name : null } : null;
  const cacheNames = new Set([...past.map((p) => p.name), ...(branch ? [branch.name] : [])]);
  const ids = byName.get('input_ids');
  const mask = byName.get('attention_mask');
  if (!ids) throw new ModelError(file, `not a causal LM: no 'input_ids' input (inputs: ${inputs.map((v) => v.name).join(', ') || 'none'})`);
  if (!mask) throw new ModelError(file, "not a causal LM: no 'attention_mask' input");
  const pos = byName.get('position_ids');
  const unexpected = inputs.filter((v) => !['input_ids', 'attention_mask', 'position_ids'].includes(v.name) && !cacheNames.has(v.name)).map((v) => v.name);
  if (unexpected.length > 0) {
    throw new ModelError(
      file,
      `unexpected inputs for a causal LM: ${unexpected.join(', ')} (expected input_ids, attention_mask, optional position_ids and past key values)`,
    );
  }
  const logits = graph.output.find((v) => v.name === 'logits');
  if (!logits) throw new ModelError(file, `not a causal LM: no 'logits' output (outputs: ${graph.output.map((v) => v.name).join(', ')})`);
  const logitsType = valueInfoElemType(logits);
  if (!FLOAT_TYPES.has(logitsType)) throw new ModelError(file, `output 'logits' must be floating point, found ${dataTypeName(logitsType)}`);
  const dims = valueInfoDims(logits);
  if (dims && dims.length !== 3) throw new ModelError(file, `output 'logits' must have rank 3 [batch, sequence, vocab], found rank ${dims.length}`);
  const vocab = dims && typeof dims[2] === 'number' ? dims[2] : null;
  return {
    inputIds: indexInput(ids, file),
    attentionMask: indexInput(mask, file),
    positionIds: pos ? indexInput(pos, file) : null,
    logits: logits.name,
    logitsType,
    vocab,
    cache,
  };
}
