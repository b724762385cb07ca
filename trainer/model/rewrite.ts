// Turns a loaded causal LM into the training graph: trainable weights become float32 graph inputs
// (bound once, mutated in place by the ZO kernels) and the masked next-token loss is computed inside
// the graph, so [B,T,V] logits never cross into JavaScript. A decoder exported with a KV cache runs
// without one here: its no-cache branch, an empty past, and no present.* outputs.
import { emptyPastInputs, inlineElseBranch, pruneUnused } from './cache';
import { ModelError } from './errors';
import { allNodes } from './float-sources';
import type { LoadedModel, WeightSpec } from './load';
import { DataType, decodeModel, encodeModel, int64Tensor, node, onnxTypes, toNumber, valueInfo } from './onnx';
import type { CausalLmIo } from './validate';
import { substituteWeightSources } from './weight-sources';

/** Names the training graph adds. */
export const TRAINING_NAMES = {
  labels: 'labels',
  lossSum: 'loss_sum',
  perExample: 'loss_per_example',
  lastLogits: 'last_logits',
} as const;

export const IGNORE_INDEX = -100;

export interface TrainingGraph {
  file: string;
  identity: string;
  /** Serialized ONNX model for an InferenceSession. */
  bytes: Uint8Array;
  io: CausalLmIo;
  /** Trainable weights (sorted by name) and, for each, the graph input that carries its float32 values. */
  weights: WeightSpec[];
  weightInputs: ReadonlyMap<string, string>;
}

/**
 * Builds the training graph of `model`. Outputs: `logits` (as in the base model), `loss_sum` (float64
 * scalar: float32 per-token cross-entropies summed in float64 so that the difference of two nearby
 * losses is not lost in summation rounding), `loss_per_example` (float64 [B]) and `last_logits`
 * ([B,V], logits at each row's last attended position; right padding). Input `labels` int64 [B,T]:
 * labels[b,t] is the target of position t, -100 ignores it.
 */
export function rewriteForTraining(model: LoadedModel): TrainingGraph {
  const proto = decodeModel(encodeModel(model.proto));
  const graph = proto.graph;
  const opset = ensureLossOpset(proto, graph, model.file);

  const sources = bindWeightInputs(graph, model.weights);
  if (model.io.cache) {
    if (model.io.cache.useCacheBranch) inlineElseBranch(graph, model.io.cache.useCacheBranch);
    emptyPastInputs(graph, model.io);
  }
  addLossHead(graph, model.io, opset);
  pruneUnused(graph);
  return {
    file: model.file,
    identity: model.identity,
    bytes: encodeModel(proto),
    io: model.io,
    weights: model.weights.map(({ data: _data, ...spec }) => spec),
    weightInputs: sources,
  };
}

/** Makes every weight a float32 graph input (see substituteWeightSources); returns weight → input name. */
export function bindWeightInputs(graph: onnxTypes.Graph, weights: LoadedModel['weights'] | WeightSpec[]): Map<string, string> {
  const sources = substituteWeightSources(graph, weights);
  for (const w of weights) graph.input.push(valueInfo(sources.get(w.name) as string, DataType.FLOAT, w.dims));
  return sources;
}

/**
 * SoftmaxCrossEntropyLoss needs opset 12. Opset 11 is raised to 12 when that is safe: every operator
 * change at opset 12 only adds types or optional inputs, except Dropout, whose `ratio` attribute became
 * an input. Older opsets are refused.
 */
function ensureLossOpset(proto: onnxTypes.Model, graph: onnxTypes.Graph, file: string): number {
  const entry = proto.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  const version = entry ? toNumber(entry.version) : 0;
  if (version >= 12) return version;
  const dropoutAttrs = allNodes(graph).some((n) => n.opType === 'Dropout' && (n.domain === '' || n.domain === 'ai.onnx') && n.attribute.length > 0);
  if (!entry || version < 11 || dropoutAttrs) {
    throw new ModelError(file, `opset ${version} is too old for the in-graph loss (needs opset ≥ 12); re-export the model with opset 12 or newer`);
  }
  entry.version = 12;
  if (toNumber(proto.irVersion) < 7) proto.irVersion = 7;
  return 12;
}

function addLossHead(graph: onnxTypes.Graph, io: CausalLmIo, opset: number): void {
  const p = 'fedkseed_loss/';
  const n = graph.node;
  const axesInput = opset >= 13;
  const constant = (name: string, values: number[]): string => {
    graph.initializer.push(int64Tensor(p + name, values));
    return p + name;
  };
  // Reduce/Unsqueeze/Squeeze take axes as an input from opset 13, as an attribute before.
  const withAxes = (op: string, input: string, axes: number[], output: string, attrs: Record<string, number> = {}): void => {
    if (axesInput) n.push(node(op, [input, constant(`${output}_axes`, axes)], [p + output], p + output, attrs));
    else n.push(node(op, [input], [p + output], p + output, { ...attrs, axes }));
  };

  let logits = io.logits;
  if (io.logitsType !== DataType.FLOAT) {
    n.push(node('Cast', [logits], [p + 'logits_f32'], p + 'logits_f32', { to: DataType.FLOAT }));
    logits = p + 'logits_f32';
  }
  graph.input.push(valueInfo(TRAINING_NAMES.labels, DataType.INT64, ['batch', 'sequence']));

  // Loss: [B,T,V] → [B·T,V] (a reshape, no copy), per-token cross-entropy, sums in float64.
  n.push(node('Flatten', [logits], [p + 'scores'], p + 'scores', { axis: 2 }));
  n.push(node('Reshape', [TRAINING_NAMES.labels, constant('flat', [-1])], [p + 'targets'], p + 'targets'));
  n.push(
    node('SoftmaxCrossEntropyLoss', [p + 'scores', p + 'targets'], [p + 'token_loss'], p + 'token_loss', {
      reduction: 'none',
      ignore_index: IGNORE_INDEX,
    }),
  );
  n.push(node('Cast', [p + 'token_loss'], [p + 'token_loss64'], p + 'token_loss64', { to: DataType.DOUBLE }));
  n.push(node('Shape', [TRAINING_NAMES.labels], [p + 'bt'], p + 'bt'));
  n.push(node('Reshape', [p + 'token_loss64', p + 'bt'], [p + 'token_loss_bt'], p + 'token_loss_bt'));
  withAxes('ReduceSum', p + 'token_loss_bt', [1], 'per_example', { keepdims: 0 });
  n.push(node('Identity', [p + 'per_example'], [TRAINING_NAMES.perExample], TRAINING_NAMES.perExample));
  n.push(node('ReduceSum', [p + 'per_example'], [TRAINING_NAMES.lossSum], TRAINING_NAMES.lossSum, { keepdims: 0 }));

  // Generation: logits at index sum(mask)-1 of each row.
  n.push(node('Cast', [io.attentionMask.name], [p + 'mask64'], p + 'mask64', { to: DataType.INT64 }));
  withAxes('ReduceSum', p + 'mask64', [1], 'lengths', { keepdims: 1 });
  n.push(node('Sub', [p + 'lengths', constant('one', [1])], [p + 'last'], p + 'last'));
  withAxes('Unsqueeze', p + 'last', [2], 'last3');
  n.push(node('Shape', [logits], [p + 'logits_shape'], p + 'logits_shape'));
  n.push(node('Slice', [p + 'logits_shape', constant('v_start', [2]), constant('v_end', [3])], [p + 'vocab'], p + 'vocab'));
  n.push(node('Concat', [constant('ones2', [1, 1]), p + 'vocab'], [p + 'expand_shape'], p + 'expand_shape', { axis: 0 }));
  n.push(node('Expand', [p + 'last3', p + 'expand_shape'], [p + 'gather_index'], p + 'gather_index'));
  n.push(node('GatherElements', [logits, p + 'gather_index'], [p + 'last_b1v'], p + 'last_b1v', { axis: 1 }));
  withAxes('Squeeze', p + 'last_b1v', [1], 'last_bv');
  n.push(node('Identity', [p + 'last_bv'], [TRAINING_NAMES.lastLogits], TRAINING_NAMES.lastLogits));

  // Keep only what training and generation read, so other outputs (e.g. present.*) are pruned.
  const logitsInfo = graph.output.find((v) => v.name === io.logits) as onnxTypes.ValueInfo;
  graph.output = [
    logitsInfo,
    valueInfo(TRAINING_NAMES.lossSum, DataType.DOUBLE, []),
    valueInfo(TRAINING_NAMES.perExample, DataType.DOUBLE, ['batch']),
    valueInfo(TRAINING_NAMES.lastLogits, DataType.FLOAT, ['batch', io.vocab ?? 'vocab']),
  ];
}
