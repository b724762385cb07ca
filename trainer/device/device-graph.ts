// The training graph as a device runs it: every trainable weight is cut out of one float32 input holding
// the whole parameter span (laid out by global index, as ParameterSet and the perturbation graph see it),
// so the weights can stay on the device between runs as one tensor; the input shapes are fixed, so
// onnxruntime folds the shape arithmetic (int64 ops that WebGPU does not run) into constants; and the loss
// head uses only ops WebGPU runs (no float64, no SoftmaxCrossEntropyLoss): per-token losses
// logsumexp(logits) − logits[target] come back as float32 [B,T,1], summed in float64 on the host.
import { pruneUnused } from '../model/cache';
import { allNodes } from '../model/float-sources';
import { TRAINING_NAMES, type TrainingGraph } from '../model/rewrite';
import { DataType, decodeModel, encodeModel, getIntAttr, int64Tensor, node, rawTensor, toNumber, valueInfo, type onnxTypes } from '../model/onnx';
import { productsInFloat16 } from './float16-products';
import type { ForwardPrecision } from '../../contracts/trainer-payloads';

/** Names the device graph adds. */
export const DEVICE_NAMES = {
  /** float32 [indexSpan]: every weight at its global index (gaps included). */
  span: 'fedkseed_weights',
  /** int32 [B,T,1]: the target token of each position (ignored positions: any valid id, e.g. 0). */
  targets: 'fedkseed_targets',
  /** int32 [B]: b·T + (index of row b's last attended position). */
  lastIndex: 'fedkseed_last_index',
  /** float32 [B,T,1]: −log p(target) at every position. */
  tokenLoss: 'fedkseed_token_loss',
  /** float32 [B,V]: logits at each row's last attended position. */
  lastLogits: 'fedkseed_last_logits',
} as const;

export interface DeviceShape {
  readonly batch: number;
  readonly seq: number;
}

/** Where each weight lies in the span (ParameterSet.tensors and indexSpan). */
export interface SpanLayout {
  readonly indexSpan: number;
  readonly tensors: readonly { readonly name: string; readonly dims: readonly number[]; readonly offset: number; readonly size: number }[];
}

/**
 * The device graph of a training graph (rewriteForTraining's, so every way a model's weights are read —
 * float16 storage, quantized weights, tied copies — and a KV-cache export's no-cache branch come as they
 * are there): its weight inputs become slices of the span, its loss head is replaced.
 */
export function rewriteForDevice(training: TrainingGraph, layout: SpanLayout, shape: DeviceShape, precision: ForwardPrecision = 'float32'): Uint8Array {
  const { batch, seq } = shape;
  if (!Number.isInteger(batch) || batch < 1 || !Number.isInteger(seq) || seq < 1) throw new RangeError(`bad device shape ${batch}×${seq}`);
  const proto = decodeModel(training.bytes);
  const graph = proto.graph;
  const entry = proto.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  const opset = entry ? toNumber(entry.version) : 0;

  const weightInputs = new Set(training.weightInputs.values());
  graph.input = graph.input.filter((v) => !weightInputs.has(v.name) && v.name !== TRAINING_NAMES.labels);
  const p = 'fedkseed_device/';
  const constant = (name: string, values: number[], dims?: number[]): string => {
    graph.initializer.push(int64Tensor(p + name, values, dims));
    return p + name;
  };
  if (layout.tensors.length !== training.weights.length) {
    throw new Error(`${training.file}: the layout has ${layout.tensors.length} tensors, the model ${training.weights.length} trainable weights`);
  }
  const unpack: onnxTypes.Node[] = [];
  const zero = constant('axis0', [0]);
  for (const t of layout.tensors) {
    const source = training.weightInputs.get(t.name);
    if (source === undefined) throw new Error(`${training.file}: the layout names '${t.name}', which is not a trainable weight of the model`);
    const cut = `${p}${t.name}/slice`;
    unpack.push(node('Slice', [DEVICE_NAMES.span, constant(`${t.name}/start`, [t.offset]), constant(`${t.name}/end`, [t.offset + t.size]), zero], [cut], cut));
    unpack.push(node('Reshape', [cut, constant(`${t.name}/dims`, [...t.dims])], [source], `${p}${t.name}/reshape`));
  }
  graph.node.unshift(...unpack);
  graph.input.push(valueInfo(DEVICE_NAMES.span, DataType.FLOAT, [layout.indexSpan]));

  // Fixed shapes: the shape subgraphs fold into constants at session creation.
  const io = training.io;
  for (const input of [io.inputIds, io.attentionMask, io.positionIds]) {
    if (!input) continue;
    const at = graph.input.findIndex((v) => v.name === input.name);
    graph.input[at] = valueInfo(input.name, input.type === 'int64' ? DataType.INT64 : DataType.INT32, [batch, seq]);
  }
  graph.valueInfo = [];
  retypeMaskComparisons(graph, io.attentionMask.name, p);
  rewriteOr(graph, p);

  let logits = io.logits;
  const n = graph.node;
  if (io.logitsType !== DataType.FLOAT) {
    n.push(node('Cast', [logits], [p + 'logits_f32'], p + 'logits_f32', { to: DataType.FLOAT }));
    logits = p + 'logits_f32';
  }
  const lse = p + 'logsumexp';
  if (opset >= 18) n.push(node('ReduceLogSumExp', [logits, constant('vocab_axis', [2])], [lse], lse, { keepdims: 1 }));
  else n.push(node('ReduceLogSumExp', [logits], [lse], lse, { keepdims: 1, axes: [2] }));
  n.push(node('GatherElements', [logits, DEVICE_NAMES.targets], [p + 'picked'], p + 'picked', { axis: 2 }));
  n.push(node('Sub', [lse, p + 'picked'], [DEVICE_NAMES.tokenLoss], DEVICE_NAMES.tokenLoss));
  n.push(node('Reshape', [logits, constant('rows_shape', [batch * seq, -1])], [p + 'rows'], p + 'rows'));
  n.push(node('Gather', [p + 'rows', DEVICE_NAMES.lastIndex], [DEVICE_NAMES.lastLogits], DEVICE_NAMES.lastLogits, { axis: 0 }));
  graph.input.push(valueInfo(DEVICE_NAMES.targets, DataType.INT32, [batch, seq, 1]), valueInfo(DEVICE_NAMES.lastIndex, DataType.INT32, [batch]));
  // The training graph's own outputs (logits, float64 loss sums) go, and with them its loss head.
  graph.output = [
    valueInfo(DEVICE_NAMES.tokenLoss, DataType.FLOAT, [batch, seq, 1]),
    valueInfo(DEVICE_NAMES.lastLogits, DataType.FLOAT, [batch, io.vocab ?? 'vocab']),
  ];
  if (precision === 'float16') productsInFloat16(graph, DEVICE_NAMES.span, io.logits);
  pruneUnused(graph);
  return encodeModel(proto);
}

const COMPARISONS = new Set(['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual']);
/** Integer arithmetic whose result keeps the operands' type. */
const ARITHMETIC = new Set(['Add', 'Sub', 'Mul', 'Max', 'Min']);
/** Ops whose first input's type passes to the output unchanged (the other inputs are shapes or axes). */
const PASS_THROUGH = new Set(['Unsqueeze', 'Squeeze', 'Reshape', 'Expand', 'Identity', 'Flatten', 'Slice', 'Transpose']);

/** int64 values of a constant (an initializer or a Constant node's value), or null if `name` is not one. */
function int64Constant(graph: onnxTypes.Graph, name: string): { values: number[]; dims: number[] } | null {
  const fromTensor = (t: onnxTypes.Tensor): { values: number[]; dims: number[] } | null => {
    if (t.dataType !== DataType.INT64) return null;
    const dims = t.dims.map(toNumber);
    if (t.int64Data.length > 0) return { values: t.int64Data.map(toNumber), dims };
    const raw = t.rawData;
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const values: number[] = [];
    for (let i = 0; i + 8 <= raw.byteLength; i += 8) values.push(Number(view.getBigInt64(i, true)));
    return { values, dims };
  };
  const init = graph.initializer.find((t) => t.name === name);
  if (init) return fromTensor(init);
  const constantNode = graph.node.find((n) => n.opType === 'Constant' && n.output[0] === name);
  const value = constantNode?.attribute.find((a) => a.name === 'value')?.t;
  return value ? fromTensor(value) : null;
}

/**
 * The attention mask comes in as int32: WebGPU has no int64 kernels for comparisons or arithmetic. int32
 * flows from the mask through ops that keep their input's type (Unsqueeze, Reshape, …), Cast(to int64)
 * becomes Cast(to int32), and comparisons or arithmetic with int64 constants use int32 copies of them
 * (mask values are 0/1, far inside int32). Any other reader gets the value cast back to int64.
 */
function retypeMaskComparisons(graph: onnxTypes.Graph, mask: string, p: string): void {
  const at = graph.input.findIndex((v) => v.name === mask);
  const dims = graph.input[at].type?.tensorType?.shape?.dim?.map((d) => toNumber(d.dimValue ?? 0)) ?? [];
  graph.input[at] = valueInfo(mask, DataType.INT32, dims);
  const narrow = new Set<string>([mask]);
  const queue = [mask];
  const widened = new Map<string, string>();
  const widen = (name: string): string => {
    let wide = widened.get(name);
    if (!wide) {
      wide = `${p}${name}/int64`;
      widened.set(name, wide);
      const producer = graph.node.findIndex((n) => n.output.includes(name));
      graph.node.splice(producer + 1, 0, node('Cast', [name], [wide], wide, { to: DataType.INT64 }));
    }
    return wide;
  };
  const narrowConstant = (n: onnxTypes.Node, slot: number): boolean => {
    const c = int64Constant(graph, n.input[slot]);
    if (!c || !c.values.every((v) => Math.abs(v) < 2 ** 31)) return false;
    const copy = `${p}${n.name || n.output[0]}/int32_operand${slot}`;
    graph.initializer.push(rawTensor(copy, DataType.INT32, c.dims, new Uint8Array(Int32Array.from(c.values).buffer)));
    n.input[slot] = copy;
    return true;
  };
  const topLevel = new Set(graph.node);
  while (queue.length > 0) {
    const name = queue.shift() as string;
    for (const n of allNodes(graph)) {
      if (!n.input.includes(name)) continue;
      const standard = n.domain === '' || n.domain === 'ai.onnx';
      const others = n.input.map((_x, i) => i).filter((i) => n.input[i] !== name && n.input[i] !== '');
      let output: string | null = null;
      let handled = false;
      if (standard && topLevel.has(n) && n.opType === 'Cast') {
        handled = true;
        if (getIntAttr(n, 'to') === DataType.INT64) {
          n.attribute = n.attribute.filter((a) => a.name !== 'to');
          n.attribute.push(node('Cast', [], [], '', { to: DataType.INT32 }).attribute[0]);
          output = n.output[0];
        }
      } else if (standard && topLevel.has(n) && PASS_THROUGH.has(n.opType) && n.input[0] === name && !n.input.slice(1).includes(name)) {
        handled = true;
        output = n.output[0];
      } else if (standard && topLevel.has(n) && (COMPARISONS.has(n.opType) || ARITHMETIC.has(n.opType))) {
        const ok = others.every((i) => narrow.has(n.input[i]) || int64Constant(graph, n.input[i]) !== null);
        if (ok) {
          for (const i of others) if (!narrow.has(n.input[i])) narrowConstant(n, i);
          handled = true;
          if (ARITHMETIC.has(n.opType)) output = n.output[0];
        }
      }
      if (!handled) {
        const wide = widen(name);
        for (let i = 0; i < n.input.length; i++) if (n.input[i] === name) n.input[i] = wide;
      }
      if (output && !narrow.has(output)) {
        narrow.add(output);
        queue.push(output);
      }
    }
  }
}

/** Or has no WebGPU kernel: a ∨ b = ¬(¬a ∧ ¬b) (Not and And have). */
function rewriteOr(graph: onnxTypes.Graph, p: string): void {
  const out: onnxTypes.Node[] = [];
  for (const n of graph.node) {
    if (n.opType !== 'Or' || (n.domain !== '' && n.domain !== 'ai.onnx')) {
      out.push(n);
      continue;
    }
    const tag = `${p}${n.name || n.output[0]}`;
    out.push(
      node('Not', [n.input[0]], [`${tag}/not_a`], `${tag}/not_a`),
      node('Not', [n.input[1]], [`${tag}/not_b`], `${tag}/not_b`),
      node('And', [`${tag}/not_a`, `${tag}/not_b`], [`${tag}/neither`], `${tag}/neither`),
      node('Not', [`${tag}/neither`], [n.output[0]], n.name || `${tag}/or`),
    );
  }
  graph.node = out;
}
