// Builds a GPT-2-style causal LM directly as an ONNX model (a construction route independent of the
// torch export of the bundled model): input_ids, attention_mask → logits, causal + key-padding mask,
// pre-LayerNorm blocks, exact (erf) GELU, learned positions, optionally tied embeddings.
import { writeFileSync } from 'node:fs';
import { DataType, createModel, encodeModel, floatTensor, int64Tensor, node, onnxTypes, rawTensor, valueInfo } from './onnx';
import { seededNormal } from './random';
import { encodeFloats, storageDataType } from './tensor-data';

export interface Gpt2Config {
  vocab: number;
  ctx: number;
  dModel: number;
  layers: number;
  heads: number;
  mlpRatio: number;
  tiedEmbeddings: boolean;
  /** Initializer storage; float16 weights each feed a Cast(to=float), compute stays float32. */
  dtype: 'float32' | 'float16';
  seed: number;
  /** Default-domain opset, 17 or 18 (LayerNormalization needs 17). */
  opset?: 17 | 18;
  /** Take positions from a `position_ids` input (as some Optimum exports do) instead of 0..T-1. */
  positionIdsInput?: boolean;
  /**
   * Export with past key values, as Optimum's decoder_with_past_model.onnx: inputs
   * past_key_values.{l}.key/value [batch, heads, past, head dim], attention_mask over past + new tokens,
   * outputs present.{l}.key/value; positions continue from the past length.
   */
  kvCache?: boolean;
}

/**
 * Benchmark shapes: about 1.3M parameters (for slow devices, e.g. a software WebGPU adapter), about 10M,
 * and GPT-2 small (124M with tied embeddings).
 */
export const GPT2_PRESETS = {
  'zo-1m': { vocab: 4096, ctx: 128, dModel: 128, layers: 4, heads: 4, mlpRatio: 4, tiedEmbeddings: true, dtype: 'float32', seed: 1 },
  'zo-10m': { vocab: 8192, ctx: 256, dModel: 320, layers: 6, heads: 5, mlpRatio: 4, tiedEmbeddings: true, dtype: 'float32', seed: 1 },
  'gpt2-small': { vocab: 50257, ctx: 1024, dModel: 768, layers: 12, heads: 12, mlpRatio: 4, tiedEmbeddings: true, dtype: 'float32', seed: 1 },
} as const satisfies Record<string, Gpt2Config>;

export function gpt2ParamCount(c: Gpt2Config): number {
  const d = c.dModel;
  const inner = c.mlpRatio * d;
  const block = 4 * d + d * 3 * d + 3 * d + d * d + d + d * inner + inner + inner * d + d;
  return c.vocab * d + c.ctx * d + c.layers * block + 2 * d + (c.tiedEmbeddings ? 0 : c.vocab * d);
}

export function buildGpt2(c: Gpt2Config): onnxTypes.Model {
  if (c.dModel % c.heads !== 0) throw new Error(`dModel ${c.dModel} is not divisible by heads ${c.heads}`);
  const opset = c.opset ?? 17;
  const normal = seededNormal(c.seed);
  const nodes: onnxTypes.Node[] = [];
  const initializers: onnxTypes.Tensor[] = [];
  const d = c.dModel;
  const inner = c.mlpRatio * d;
  const headDim = d / c.heads;

  /** A trainable weight; returns the float32 value name the graph reads. */
  const weight = (name: string, dims: number[], init: 'normal' | 'zeros' | 'ones'): string => {
    const size = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (init === 'ones') data.fill(1);
    else if (init === 'normal') for (let i = 0; i < size; i++) data[i] = 0.02 * normal();
    initializers.push(rawTensor(name, storageDataType(c.dtype), dims, encodeFloats(data, c.dtype)));
    if (c.dtype === 'float32') return name;
    nodes.push(node('Cast', [name], [`${name}::fp32`], `cast_fp32/${name}`, { to: DataType.FLOAT }));
    return `${name}::fp32`;
  };
  const ints = (name: string, values: number[], dims?: number[]): string => {
    initializers.push(int64Tensor(name, values, dims));
    return name;
  };
  // Float constants are Constant nodes, not initializers, so they are not taken for trainable weights.
  const scalar = (name: string, value: number): string => {
    nodes.push(node('Constant', [], [name], name, { value: floatTensor(`${name}_value`, [value], []) }));
    return name;
  };
  const op = (type: string, inputs: string[], output: string, attrs: Parameters<typeof node>[4] = {}): string => {
    nodes.push(node(type, inputs, [output], output, attrs));
    return output;
  };
  const linear = (x: string, prefix: string, inDim: number, outDim: number): string =>
    op(
      'Add',
      [op('MatMul', [x, weight(`${prefix}.weight`, [inDim, outDim], 'normal')], `${prefix}/matmul`), weight(`${prefix}.bias`, [outDim], 'zeros')],
      `${prefix}/out`,
    );
  const layerNorm = (x: string, prefix: string): string =>
    op('LayerNormalization', [x, weight(`${prefix}.weight`, [d], 'ones'), weight(`${prefix}.bias`, [d], 'zeros')], `${prefix}/out`, {
      axis: -1,
      epsilon: { float: 1e-5 },
    });
  const unsqueeze = (x: string, axes: number[], output: string): string => op('Unsqueeze', [x, ints(`${output}/axes`, axes)], output);

  const wte = weight('transformer.wte.weight', [c.vocab, d], 'normal');
  const wpe = weight('transformer.wpe.weight', [c.ctx, d], 'normal');
  const seqLen = op('Gather', [op('Shape', ['input_ids'], 'shape'), ints('one_index', [1], [])], 'seq_len');
  const kv = c.kvCache === true;
  const past = (l: number, which: 'key' | 'value'): string => `past_key_values.${l}.${which}`;
  const present = (l: number, which: 'key' | 'value'): string => `present.${l}.${which}`;
  // With a cache the new tokens are positions past..past+T-1 and the keys 0..past+T-1.
  const pastLen = kv ? op('Gather', [op('Shape', [past(0, 'key')], 'past_shape'), ints('two_index', [2], [])], 'past_len') : '';
  const positions = kv
    ? op('Range', [pastLen, op('Add', [pastLen, seqLen], 'total_len'), ints('step', [1], [])], 'positions')
    : op('Range', [ints('zero', [0], []), seqLen, ints('step', [1], [])], 'positions');
  const keyPositions = kv ? op('Range', [ints('zero', [0], []), 'total_len', 'step'], 'key_positions') : positions;
  const positionSource = c.positionIdsInput ? 'position_ids' : positions;
  let h = op('Add', [op('Gather', [wte, 'input_ids'], 'tok_emb'), op('Gather', [wpe, positionSource], 'pos_emb')], 'h0');

  // Additive attention bias [B,1,T,S]: -1e9 where the key is in the future or is padding.
  const future = op('Greater', [unsqueeze(keyPositions, [0], 'key_pos'), unsqueeze(positions, [1], 'query_pos')], 'future');
  const padding = unsqueeze(op('Equal', ['attention_mask', ints('mask_zero', [0], [])], 'padding'), [1, 2], 'padding4');
  const blocked = op('Or', [future, padding], 'blocked');
  const bias = op('Where', [blocked, scalar('neg_inf', -1e9), scalar('zero_f', 0)], 'attn_bias');
  const scale = scalar('attn_scale', 1 / Math.sqrt(headDim));
  const heads = ints('heads_shape', [0, 0, c.heads, headDim]);
  const merged = ints('merged_shape', [0, 0, d]);
  const split = ints('qkv_split', [d, d, d]);
  const half = scalar('half', 0.5);
  const one = scalar('one', 1);
  const sqrt2 = scalar('sqrt2', Math.SQRT2);

  for (let l = 0; l < c.layers; l++) {
    const p = `transformer.h.${l}`;
    const qkv = linear(layerNorm(h, `${p}.ln_1`), `${p}.attn.c_attn`, d, 3 * d);
    nodes.push(node('Split', [qkv, split], [`${p}/q`, `${p}/k`, `${p}/v`], `${p}/split`, { axis: 2 }));
    const shaped = (x: string, perm: number[]): string => op('Transpose', [op('Reshape', [`${p}/${x}`, heads], `${p}/${x}_heads`)], `${p}/${x}_t`, { perm });
    // Node order as without a cache: q, k, the scores, then v.
    const queries = shaped('q', [0, 2, 1, 3]);
    let keysT: string;
    let cachedValues: string | null = null;
    if (kv) {
      // Keys and values [B,H,S,hd]: the past ones, then the new ones; returned as present.
      op('Concat', [past(l, 'key'), shaped('k', [0, 2, 1, 3])], present(l, 'key'), { axis: 2 });
      cachedValues = op('Concat', [past(l, 'value'), shaped('v', [0, 2, 1, 3])], present(l, 'value'), { axis: 2 });
      keysT = op('Transpose', [present(l, 'key')], `${p}/keys_t`, { perm: [0, 1, 3, 2] });
    } else {
      keysT = shaped('k', [0, 2, 3, 1]);
    }
    const scores = op('Add', [op('Mul', [op('MatMul', [queries, keysT], `${p}/qk`), scale], `${p}/scaled`), bias], `${p}/scores`);
    const probs = op('Softmax', [scores], `${p}/probs`, { axis: -1 });
    const context = op('MatMul', [probs, cachedValues ?? shaped('v', [0, 2, 1, 3])], `${p}/context`);
    const joined = op('Reshape', [op('Transpose', [context], `${p}/context_t`, { perm: [0, 2, 1, 3] }), merged], `${p}/context_merged`);
    h = op('Add', [h, linear(joined, `${p}.attn.c_proj`, d, d)], `${p}/resid_attn`);
    const u = linear(layerNorm(h, `${p}.ln_2`), `${p}.mlp.c_fc`, d, inner);
    const erf = op('Erf', [op('Div', [u, sqrt2], `${p}/u_scaled`)], `${p}/erf`);
    const gelu = op('Mul', [op('Mul', [u, half], `${p}/u_half`), op('Add', [erf, one], `${p}/erf_1`)], `${p}/gelu`);
    h = op('Add', [h, linear(gelu, `${p}.mlp.c_proj`, inner, d)], `${p}/resid_mlp`);
  }
  const final = layerNorm(h, 'transformer.ln_f');
  const head = c.tiedEmbeddings ? wte : weight('lm_head.weight', [c.vocab, d], 'normal');
  op('MatMul', [final, op('Transpose', [head], 'lm_head_t', { perm: [1, 0] })], 'logits');

  return createModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: opset }],
    producerName: 'fedkseed-gpt2-builder',
    graph: {
      name: 'gpt2',
      node: nodes,
      initializer: initializers,
      input: [
        valueInfo('input_ids', DataType.INT64, ['batch_size', 'sequence_length']),
        valueInfo('attention_mask', DataType.INT64, ['batch_size', kv ? 'total_sequence_length' : 'sequence_length']),
        ...(c.positionIdsInput ? [valueInfo('position_ids', DataType.INT64, ['batch_size', 'sequence_length'])] : []),
        ...cacheInfos(c, 'past_key_values', 'past_sequence_length'),
      ],
      output: [valueInfo('logits', DataType.FLOAT, ['batch_size', 'sequence_length', c.vocab]), ...cacheInfos(c, 'present', 'total_sequence_length')],
    },
  });
}

function cacheInfos(c: Gpt2Config, prefix: string, length: string): onnxTypes.ValueInfo[] {
  if (!c.kvCache) return [];
  const dims = ['batch_size', c.heads, length, c.dModel / c.heads];
  return Array.from({ length: c.layers }, (_, l) => ['key', 'value'].map((w) => valueInfo(`${prefix}.${l}.${w}`, DataType.FLOAT, dims))).flat();
}

export function gpt2Bytes(c: Gpt2Config): Uint8Array {
  return encodeModel(buildGpt2(c));
}

export function writeGpt2(c: Gpt2Config, path: string): void {
  writeFileSync(path, gpt2Bytes(c));
}
