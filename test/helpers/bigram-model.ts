// A tiny causal-LM-shaped model whose loss is a simple known function of its weights, written with
// onnx-proto directly (not by the GPT-2 builder, not by torch): logits[b,t,:] = table[input_ids[b,t], :]
// + bias. Its exact gradient is computed in closed form, so ZO gradient estimates can be checked
// against the truth.
import { DataType, createModel, encodeModel, node, onnxTypes, rawTensor, valueInfo } from '../../trainer/model/onnx';
import { seededNormal } from '../../trainer/model/random';
import { decodeFloats, encodeFloats, type FloatStorage, storageDataType } from '../../trainer/model/tensor-data';

export const BIGRAM_TABLE = 'bigram.table';
export const BIGRAM_BIAS = 'bigram.bias';

export interface BigramModelOptions {
  vocab: number;
  seed: number;
  /** Initial values ~ N(0, scale²); default 1. */
  scale?: number;
  storage?: FloatStorage;
  /** Default-domain opset; default 17. */
  opset?: number;
  /**
   * With 16-bit storage: the bias passes through a 16-bit Mul before its Cast to float, so not every
   * consumer is a Cast (exercises the rewrite's inserted-Cast route).
   */
  biasThroughHalfOp?: boolean;
}

export interface BigramModel {
  bytes: Uint8Array;
  vocab: number;
  /** Initial weights as float32, exactly as stored (after rounding to the storage type). */
  table: Float32Array;
  bias: Float32Array;
}

export function buildBigramModel(o: BigramModelOptions): BigramModel {
  const storage = o.storage ?? 'float32';
  const v = o.vocab;
  const normal = seededNormal(o.seed);
  const scale = o.scale ?? 1;
  const init = (n: number): { bytes: Uint8Array; values: Float32Array } => {
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = scale * normal();
    const bytes = encodeFloats(data, storage);
    const values = new Float32Array(n);
    decodeFloats(bytes, storage, values);
    return { bytes, values };
  };
  const table = init(v * v);
  const bias = init(v);
  const nodes: onnxTypes.Node[] = [];
  const half = storage !== 'float32';
  let tableF = BIGRAM_TABLE;
  let biasF = BIGRAM_BIAS;
  if (half) {
    tableF = 'table_f32';
    nodes.push(node('Cast', [BIGRAM_TABLE], [tableF], 'cast_table', { to: DataType.FLOAT }));
    let biasHalf = BIGRAM_BIAS;
    if (o.biasThroughHalfOp) {
      const one = rawTensor('one_half', storageDataType(storage), [], encodeFloats(Float32Array.of(1), storage));
      nodes.push(node('Constant', [], ['one'], 'one', { value: one }));
      nodes.push(node('Mul', [BIGRAM_BIAS, 'one'], ['bias_times_one'], 'bias_times_one'));
      biasHalf = 'bias_times_one';
    }
    biasF = 'bias_f32';
    nodes.push(node('Cast', [biasHalf], [biasF], 'cast_bias', { to: DataType.FLOAT }));
  }
  nodes.push(node('Gather', [tableF, 'input_ids'], ['rows'], 'rows', { axis: 0 }));
  nodes.push(node('Add', ['rows', biasF], ['logits'], 'logits'));
  const model = createModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: o.opset ?? 17 }],
    producerName: 'fedkseed-bigram-fixture',
    graph: {
      name: 'bigram',
      node: nodes,
      initializer: [rawTensor(BIGRAM_TABLE, storageDataType(storage), [v, v], table.bytes), rawTensor(BIGRAM_BIAS, storageDataType(storage), [v], bias.bytes)],
      input: [valueInfo('input_ids', DataType.INT64, ['batch', 'sequence']), valueInfo('attention_mask', DataType.INT64, ['batch', 'sequence'])],
      output: [valueInfo('logits', DataType.FLOAT, ['batch', 'sequence', v])],
    },
  });
  return { bytes: encodeModel(model), vocab: v, table: table.values, bias: bias.values };
}

export interface BigramGradient {
  /** Mean cross-entropy over the non-ignored labels. */
  meanLoss: number;
  tokens: number;
  /** d meanLoss / d table, [V·V] row-major, and d meanLoss / d bias, [V]. */
  table: Float64Array;
  bias: Float64Array;
}

/**
 * Exact gradient of the mean masked next-token loss: for each counted position with input x and
 * label y, (softmax(table[x] + bias) − onehot(y)) / N is added to table row x and to bias.
 */
export function bigramLossAndGradient(
  table: Float32Array,
  bias: Float32Array,
  vocab: number,
  batch: { inputIds: BigInt64Array; labels: BigInt64Array },
): BigramGradient {
  const gTable = new Float64Array(vocab * vocab);
  const gBias = new Float64Array(vocab);
  const p = new Float64Array(vocab);
  let sum = 0;
  let tokens = 0;
  for (let i = 0; i < batch.labels.length; i++) if (batch.labels[i] !== -100n) tokens++;
  for (let i = 0; i < batch.labels.length; i++) {
    if (batch.labels[i] === -100n) continue;
    const x = Number(batch.inputIds[i]);
    const y = Number(batch.labels[i]);
    let max = -Infinity;
    for (let k = 0; k < vocab; k++) max = Math.max(max, table[x * vocab + k] + bias[k]);
    let z = 0;
    for (let k = 0; k < vocab; k++) z += p[k] = Math.exp(table[x * vocab + k] + bias[k] - max);
    sum += Math.log(z) + max - (table[x * vocab + y] + bias[y]);
    for (let k = 0; k < vocab; k++) {
      const g = (p[k] / z - (k === y ? 1 : 0)) / tokens;
      gTable[x * vocab + k] += g;
      gBias[k] += g;
    }
  }
  return { meanLoss: tokens ? sum / tokens : 0, tokens, table: gTable, bias: gBias };
}
