// Which tensors of a model are its trainable parameters, decided from how the graph reads them: the
// weights of MatMul, Gemm, Conv and Gather (embeddings), normalisation scales and biases, linear biases
// and per-channel scales. Float constants (rotary caches, masks, scalars) are left alone, and weights
// stored quantized (DequantizeLinear, MatMulNBits) are trained through float32 masters.
import { allNodes } from './float-sources';
import { getIntAttr, type onnxTypes } from './onnx';

/** Ops that only move or re-type a tensor: a weight read through them is still that weight. */
const LAYOUT_OPS = new Set(['Transpose', 'Reshape', 'Squeeze', 'Unsqueeze', 'Flatten']);
const TYPE_OPS = new Set(['Cast', 'Identity']);

const NORMALIZATION_SLOTS: Record<string, Record<number, string>> = {
  LayerNormalization: { 1: 'scale', 2: 'bias' },
  SimplifiedLayerNormalization: { 1: 'scale' },
  RMSNormalization: { 1: 'scale' },
  SkipLayerNormalization: { 2: 'scale', 3: 'bias', 4: 'bias' },
  SkipSimplifiedLayerNormalization: { 2: 'scale', 3: 'bias' },
  BatchNormalization: { 1: 'scale', 2: 'bias' },
  InstanceNormalization: { 1: 'scale', 2: 'bias' },
  GroupNormalization: { 1: 'scale', 2: 'bias' },
};

/** Producers whose output a rank-1 Add operand is the bias of. */
const LINEAR_OPS = new Set(['MatMul', 'Gemm', 'Conv', 'FusedMatMul', 'MatMulNBits']);

/** Names of tensors that are rotary tables or frequencies, never weights. */
const ROTARY_NAME = /(^|[._/:])(inv_freq|cos_cached|sin_cached|cos_cache|sin_cache|rotary|rope)/i;

export interface GraphIndex {
  /** Every (node, input index) reading a name, subgraphs included. */
  consumers: Map<string, { node: onnxTypes.Node; index: number }[]>;
  producers: Map<string, onnxTypes.Node>;
}

export function indexGraph(graph: onnxTypes.Graph): GraphIndex {
  const consumers = new Map<string, { node: onnxTypes.Node; index: number }[]>();
  const producers = new Map<string, onnxTypes.Node>();
  for (const node of allNodes(graph)) {
    node.input.forEach((name, index) => {
      if (!name) return;
      let list = consumers.get(name);
      if (!list) consumers.set(name, (list = []));
      list.push({ node, index });
    });
    for (const out of node.output) if (out) producers.set(out, node);
  }
  return { consumers, producers };
}

function isDefaultDomain(n: onnxTypes.Node): boolean {
  return n.domain === '' || n.domain === 'ai.onnx';
}

/** What a tensor's values say about it, for tensors that reach an embedding or elementwise slot. */
export interface ValueProbe {
  /** True when the values look like a rotary cos/sin table or a frequency vector. */
  rotaryLike(): boolean;
}

/**
 * The parameter roles of `name` (an initializer, or a dequantized value of the given dims): one per kind
 * of weight slot that reads it, none for a constant. `readers` lists the ops that read it (for a
 * constant's reason); `rotary` is true when a slot refused it as a rotary table.
 */
export function parameterRole(
  name: string,
  dims: readonly number[],
  index: GraphIndex,
  probe: ValueProbe,
): { roles: string[]; readers: string[]; rotary: boolean } {
  const rank = dims.length;
  const size = dims.reduce((a, b) => a * b, 1);
  const readers = new Set<string>();
  const seen = new Set<string>();
  const roles = new Set<string>();
  let refused = false;
  let cached: boolean | undefined;
  const rotary = (): boolean => {
    cached ??= ROTARY_NAME.test(name) || probe.rotaryLike();
    if (cached) refused = true;
    return cached;
  };

  const visit = (value: string, throughLayout: boolean): void => {
    if (seen.has(value)) return;
    seen.add(value);
    for (const { node, index: i } of index.consumers.get(value) ?? []) {
      const op = node.opType;
      if ((LAYOUT_OPS.has(op) || TYPE_OPS.has(op)) && i === 0 && isDefaultDomain(node)) {
        visit(node.output[0], throughLayout || LAYOUT_OPS.has(op));
        continue;
      }
      readers.add(op);
      const found = slotRole(node, i, rank, size, throughLayout, index, rotary);
      if (found) roles.add(found);
    }
  };
  visit(name, false);
  return { roles: [...roles], readers: [...readers].sort(), rotary: refused || (roles.size === 0 && ROTARY_NAME.test(name)) };
}

function slotRole(
  node: onnxTypes.Node,
  i: number,
  rank: number,
  size: number,
  throughLayout: boolean,
  index: GraphIndex,
  rotary: () => boolean,
): string | null {
  const op = node.opType;
  const microsoft = node.domain === 'com.microsoft';
  if (!isDefaultDomain(node) && !microsoft) return null;
  if ((op === 'MatMul' || op === 'FusedMatMul') && i === 1 && rank >= 2) return 'matmul weight';
  if (op === 'Gemm' && i === 1) return 'gemm weight';
  if (op === 'Gemm' && i === 2) return 'gemm bias';
  if ((op === 'Conv' || op === 'ConvTranspose') && i === 1) return 'conv weight';
  if ((op === 'Conv' || op === 'ConvTranspose') && i === 2) return 'conv bias';
  if (microsoft && op === 'Attention' && i === 1) return 'attention weight';
  if (microsoft && op === 'Attention' && i === 2) return 'attention bias';
  if (op === 'Gather' && i === 0 && rank === 2 && (getIntAttr(node, 'axis') ?? 0) === 0) return rotary() ? null : 'embedding';
  const norm = NORMALIZATION_SLOTS[op]?.[i];
  if (norm) return `normalisation ${norm}`;
  // Elementwise: a vector read directly (no reshaping on the way) by Add or Mul is a bias or a
  // per-channel scale (a normalisation exported op by op); scalars and masks are constants.
  if ((op === 'Add' || op === 'Mul') && isDefaultDomain(node) && !throughLayout && rank === 1 && size > 1 && !rotary()) {
    const other = node.input[1 - i];
    const producer = other ? index.producers.get(throughTypeOps(other, index)) : undefined;
    if (op === 'Add' && producer && LINEAR_OPS.has(producer.opType)) return 'linear bias';
    return op === 'Add' ? 'per-channel shift' : 'per-channel scale';
  }
  return null;
}

function throughTypeOps(name: string, index: GraphIndex): string {
  let n = name;
  for (let k = 0; k < 8; k++) {
    const p = index.producers.get(n);
    if (!p || !TYPE_OPS.has(p.opType) || !isDefaultDomain(p)) return n;
    n = p.input[0];
  }
  return n;
}

/** A rotary table (cos/sin by position: row 0 all 0 or all 1, values in [-1, 1]) or frequency vector. */
export function looksRotary(data: Float32Array, dims: readonly number[]): boolean {
  if (data.length < 2) return false;
  if (dims.length === 2) {
    const cols = dims[1];
    let zeros = true;
    let ones = true;
    for (let c = 0; c < cols; c++) {
      if (data[c] !== 0) zeros = false;
      if (data[c] !== 1) ones = false;
    }
    if (!zeros && !ones) return false;
    for (let i = 0; i < data.length; i++) if (!(Math.abs(data[i]) <= 1)) return false;
    return true;
  }
  if (dims.length === 1) {
    // inv_freq = base^(-2i/d): starts at 1, positive, strictly decreasing.
    if (data[0] !== 1) return false;
    for (let i = 1; i < data.length; i++) if (!(data[i] > 0 && data[i] < data[i - 1])) return false;
    return true;
  }
  return false;
}

/** Glob over weight names: `*` any run of characters, `?` one character, everything else literal. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (const ch of glob) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else source += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

export interface Selection {
  /** Only names matching one of these are trained (constants matching them are trained too). */
  trainable?: readonly string[];
  /** Names matching one of these are not trained. */
  freeze?: readonly string[];
}
