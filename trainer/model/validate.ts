// Checks that a graph has the interface of a causal language model exported without a KV cache
// (as torch.onnx.export / Hugging Face Optimum write them) and describes that interface.
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
}

const FLOAT_TYPES = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

function isCacheInput(name: string): boolean {
  return /past|present|cache|layer_past|\.key$|\.value$/i.test(name);
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
  const cache = inputs.filter((v) => isCacheInput(v.name)).map((v) => v.name);
  if (cache.length > 0) {
    throw new ModelError(
      file,
      `the model takes KV-cache inputs (${cache.slice(0, 3).join(', ')}${cache.length > 3 ? ', …' : ''}); ` +
        'export it without past key values (e.g. Optimum task "text-generation", not "text-generation-with-past", ' +
        'or torch.onnx.export with use_cache=False)',
    );
  }
  const ids = byName.get('input_ids');
  const mask = byName.get('attention_mask');
  if (!ids) throw new ModelError(file, `not a causal LM: no 'input_ids' input (inputs: ${inputs.map((v) => v.name).join(', ') || 'none'})`);
  if (!mask) throw new ModelError(file, "not a causal LM: no 'attention_mask' input");
  const pos = byName.get('position_ids');
  const unexpected = inputs.filter((v) => !['input_ids', 'attention_mask', 'position_ids'].includes(v.name)).map((v) => v.name);
  if (unexpected.length > 0) {
    throw new ModelError(file, `unexpected inputs for a causal LM: ${unexpected.join(', ')} (expected input_ids, attention_mask, optional position_ids)`);
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
  };
}
