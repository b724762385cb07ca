// Graph edits for decoders exported with a KV cache, so the training graph computes the loss of whole
// sequences without one: a merged decoder's If on use_cache_branch is replaced by its no-cache branch,
// every remaining past input becomes an empty tensor built in the graph (past sequence length 0), and
// what no output needs any more (present.* and the nodes computing them) is pruned.
import { allNodes } from './float-sources';
import { DataType, int64Tensor, node, onnx, type onnxTypes } from './onnx';
import type { CausalLmIo } from './validate';

function subgraphs(n: onnxTypes.Node): onnxTypes.Graph[] {
  return n.attribute.flatMap((a) => [...(a.g ? [a.g] : []), ...a.graphs]);
}

function definedNames(graph: onnxTypes.Graph): Set<string> {
  const names = new Set<string>([...graph.input.map((v) => v.name), ...graph.initializer.map((t) => t.name)]);
  for (const n of allNodes(graph)) for (const o of n.output) if (o) names.add(o);
  return names;
}

/** Renames every definition and use of `from` in a graph and its subgraphs. */
function renameEverywhere(graph: onnxTypes.Graph, from: string, to: string): void {
  for (const n of allNodes(graph)) {
    for (let i = 0; i < n.input.length; i++) if (n.input[i] === from) n.input[i] = to;
    for (let i = 0; i < n.output.length; i++) if (n.output[i] === from) n.output[i] = to;
  }
  for (const t of graph.initializer) if (t.name === from) t.name = to;
  for (const v of graph.output) if (v.name === from) v.name = to;
  for (const v of graph.valueInfo) if (v.name === from) v.name = to;
}

/**
 * Replaces each main-graph If whose condition is `condition` by its else branch (the no-cache branch of
 * an Optimum merged decoder): the branch's nodes and initializers move into the main graph (renamed where
 * a name is taken) and its outputs become the If's outputs. Returns how many Ifs were replaced.
 */
export function inlineElseBranch(graph: onnxTypes.Graph, condition: string): number {
  let count = 0;
  for (;;) {
    const at = graph.node.findIndex((n) => n.opType === 'If' && (n.domain === '' || n.domain === 'ai.onnx') && n.input[0] === condition);
    if (at < 0) return count;
    const ifNode = graph.node[at];
    const body = ifNode.attribute.find((a) => a.name === 'else_branch')?.g;
    if (!body) throw new Error(`If node '${ifNode.name}' has no else_branch`);
    const outer = definedNames(graph);
    const inner = new Set<string>([...body.initializer.map((t) => t.name)]);
    for (const n of body.node) for (const o of n.output) if (o) inner.add(o);
    // Names the branch defines that the main graph already uses get a fresh name.
    for (const name of inner) {
      if (!outer.has(name)) continue;
      let fresh = `${name}::else`;
      for (let k = 1; outer.has(fresh) || inner.has(fresh); k++) fresh = `${name}::else.${k}`;
      renameEverywhere(body, name, fresh);
      outer.add(fresh);
    }
    const moved: onnxTypes.Node[] = [...body.node];
    body.output.forEach((v, j) => {
      const target = ifNode.output[j];
      if (!target) return;
      const producer = body.node.find((n) => n.output.includes(v.name));
      const usedTwice = body.output.filter((o) => o.name === v.name).length > 1;
      if (producer && !usedTwice && !body.initializer.some((t) => t.name === v.name)) renameEverywhere(body, v.name, target);
      else moved.push(node('Identity', [v.name], [target], `${target}/else_output`));
    });
    graph.initializer.push(...body.initializer);
    graph.node.splice(at, 1, ...moved);
    count++;
  }
}

const ZERO_BYTES: Record<number, number> = { [DataType.FLOAT]: 4, [DataType.FLOAT16]: 2, [DataType.BFLOAT16]: 2, [DataType.DOUBLE]: 8 };

/**
 * Feeds every past input still read an empty tensor of its shape with past sequence length 0, built in
 * the graph from the batch size of input_ids; removes the past inputs (and use_cache_branch) from the
 * graph's inputs.
 */
export function emptyPastInputs(graph: onnxTypes.Graph, io: CausalLmIo): void {
  const cache = io.cache;
  if (!cache) return;
  const read = new Set<string>();
  for (const n of allNodes(graph)) for (const name of n.input) read.add(name);
  const p = 'fedkseed_empty_past/';
  let batch: string | null = null;
  const shapes = new Map<string, string>();
  const nodes: onnxTypes.Node[] = [];
  for (const past of cache.past) {
    if (!read.has(past.name)) continue;
    if (!batch) {
      graph.initializer.push(int64Tensor(`${p}start`, [0]), int64Tensor(`${p}end`, [1]));
      nodes.push(node('Shape', [io.inputIds.name], [`${p}ids_shape`], `${p}ids_shape`));
      nodes.push(node('Slice', [`${p}ids_shape`, `${p}start`, `${p}end`], [`${p}batch`], `${p}batch`));
      batch = `${p}batch`;
    }
    const rest = past.dims.slice(1).map((d, i) => (i + 1 === past.sequenceAxis ? 0 : (d as number)));
    const key = `${past.elemType}:${rest.join(',')}`;
    let shape = shapes.get(key);
    if (!shape) {
      const k = shapes.size;
      graph.initializer.push(int64Tensor(`${p}rest${k}`, rest));
      shape = `${p}shape${k}`;
      nodes.push(node('Concat', [batch, `${p}rest${k}`], [shape], shape, { axis: 0 }));
      shapes.set(key, shape);
    }
    const zero = onnx.TensorProto.create({
      name: `${past.name}/zero`,
      dataType: past.elemType,
      dims: [1],
      rawData: new Uint8Array(ZERO_BYTES[past.elemType] ?? 4),
    }) as unknown as onnxTypes.Tensor;
    nodes.push(node('ConstantOfShape', [shape], [past.name], `${p}${past.name}`, { value: zero }));
  }
  graph.node.unshift(...nodes);
  const dropped = new Set([...cache.past.map((x) => x.name), ...(cache.useCacheBranch ? [cache.useCacheBranch] : [])]);
  graph.input = graph.input.filter((v) => !dropped.has(v.name));
}

/** Removes main-graph nodes that no graph output depends on, then initializers nothing reads. */
export function pruneUnused(graph: onnxTypes.Graph): void {
  const needed = new Set(graph.output.map((v) => v.name));
  const keep = new Set<onnxTypes.Node>();
  for (let i = graph.node.length - 1; i >= 0; i--) {
    const n = graph.node[i];
    if (!n.output.some((o) => o && needed.has(o))) continue;
    keep.add(n);
    for (const name of n.input) if (name) needed.add(name);
    for (const g of subgraphs(n)) for (const inner of allNodes(g)) for (const name of inner.input) if (name) needed.add(name);
  }
  graph.node = graph.node.filter((n) => keep.has(n));
  graph.initializer = graph.initializer.filter((t) => needed.has(t.name));
  graph.valueInfo = graph.valueInfo.filter((v) => needed.has(v.name));
}
