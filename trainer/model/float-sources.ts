// Replaces the storage of floating-point initializers by a float32 source (a graph input for training,
// a float32 initializer for export) while keeping every consumer correct.
import { DataType, getIntAttr, node, onnxTypes } from './onnx';
import { storageDataType } from './tensor-data';
import type { WeightSpec } from './load';

/** Every node of a graph and of its subgraphs (If/Loop/Scan bodies), which may read outer names. */
export function allNodes(graph: onnxTypes.Graph): onnxTypes.Node[] {
  const out: onnxTypes.Node[] = [];
  const visit = (g: onnxTypes.Graph): void => {
    for (const n of g.node) {
      out.push(n);
      for (const a of n.attribute) {
        if (a.g) visit(a.g);
        for (const sub of a.graphs) visit(sub);
      }
    }
  };
  visit(graph);
  return out;
}

function renameUses(nodes: onnxTypes.Node[], from: string, to: string): void {
  for (const n of nodes) for (let i = 0; i < n.input.length; i++) if (n.input[i] === from) n.input[i] = to;
}

/**
 * For each weight, decides the name of its float32 source and edits `graph` so consumers stay correct:
 * float32 weights keep their name; a float16/bfloat16 weight whose consumers are all Cast(to=FLOAT) in
 * the main graph gets its own name and the casts are dropped (their readers read it directly);
 * otherwise a Cast(float32 → original type) is inserted that produces the original name.
 * Returns weight name → float32 source name. Float initializers must be removed by the caller.
 */
export function substituteFloatSources(graph: onnxTypes.Graph, weights: WeightSpec[]): Map<string, string> {
  const sources = new Map<string, string>();
  const taken = new Set<string>([...graph.input.map((v) => v.name), ...graph.initializer.map((t) => t.name)]);
  for (const n of allNodes(graph)) for (const name of n.output) taken.add(name);
  const graphOutputs = new Set(graph.output.map((v) => v.name));
  const inserted: onnxTypes.Node[] = [];
  for (const w of weights) {
    if (w.storage === 'float32') {
      sources.set(w.name, w.name);
      continue;
    }
    const nodes = allNodes(graph);
    const consumers = nodes.filter((n) => n.input.includes(w.name));
    const topLevel = new Set(graph.node);
    const allCasts =
      consumers.length > 0 &&
      !graphOutputs.has(w.name) &&
      consumers.every((n) => n.opType === 'Cast' && (n.domain === '' || n.domain === 'ai.onnx') && topLevel.has(n) && getIntAttr(n, 'to') === DataType.FLOAT);
    if (allCasts) {
      for (const cast of consumers) {
        const out = cast.output[0];
        if (graphOutputs.has(out)) {
          Object.assign(cast, node('Identity', [w.name], [out], cast.name));
        } else {
          graph.node.splice(graph.node.indexOf(cast), 1);
          renameUses(allNodes(graph), out, w.name);
          graph.valueInfo = graph.valueInfo.filter((v) => v.name !== out);
        }
      }
      graph.valueInfo = graph.valueInfo.filter((v) => v.name !== w.name);
      sources.set(w.name, w.name);
    } else {
      let source = `${w.name}::float32`;
      for (let k = 1; taken.has(source); k++) source = `${w.name}::float32.${k}`;
      taken.add(source);
      inserted.push(node('Cast', [source], [w.name], `${source}/cast`, { to: storageDataType(w.storage) }));
      sources.set(w.name, source);
    }
  }
  graph.node.unshift(...inserted);
  return sources;
}
