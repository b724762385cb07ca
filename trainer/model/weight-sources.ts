// Makes the graph read every trainable weight from one float32 value (a graph input for training and
// generation, a float32 initializer for export) while keeping every consumer correct: float16/bfloat16
// storage, a transposed copy of a tied embedding, a DequantizeLinear weight and a MatMulNBits weight.
import { allNodes } from './float-sources';
import type { WeightSpec } from './load';
import { DataType, getIntAttr, node, type onnxTypes } from './onnx';
import { storageDataType, type FloatStorage } from './tensor-data';

export interface SubstituteOptions {
  /** Leave quantized weights as they are stored (export re-quantizes their data instead). */
  readonly keepQuantized?: boolean;
}

function isDefaultDomain(n: onnxTypes.Node): boolean {
  return n.domain === '' || n.domain === 'ai.onnx';
}

function renameUses(nodes: onnxTypes.Node[], from: string, to: string): void {
  for (const n of nodes) for (let i = 0; i < n.input.length; i++) if (n.input[i] === from) n.input[i] = to;
}

/** The graph (main or subgraph) whose node list holds `target`. */
function owner(graph: onnxTypes.Graph, target: onnxTypes.Node): onnxTypes.Graph | null {
  if (graph.node.includes(target)) return graph;
  for (const n of graph.node) {
    for (const a of n.attribute) {
      for (const g of [...(a.g ? [a.g] : []), ...a.graphs]) {
        const found = owner(g, target);
        if (found) return found;
      }
    }
  }
  return null;
}

class Substitution {
  private readonly taken = new Set<string>();
  private readonly inserted: onnxTypes.Node[] = [];
  private readonly graphOutputs: Set<string>;
  /** Initializers whose values now come from a source: removed. */
  readonly replaced = new Set<string>();
  /** Initializers only the replaced nodes read (scales, zero points): removed when nothing reads them any more. */
  readonly released = new Set<string>();

  constructor(private readonly graph: onnxTypes.Graph) {
    for (const v of graph.input) this.taken.add(v.name);
    for (const t of graph.initializer) this.taken.add(t.name);
    for (const n of allNodes(graph)) for (const name of n.output) this.taken.add(name);
    this.graphOutputs = new Set(graph.output.map((v) => v.name));
  }

  fresh(base: string): string {
    let name = base;
    for (let k = 1; this.taken.has(name); k++) name = `${base}.${k}`;
    this.taken.add(name);
    return name;
  }

  insert(n: onnxTypes.Node): void {
    this.inserted.push(n);
  }

  /**
   * Chooses the float32 source of a weight whose graph value is `name` in `storage`: float32 weights keep
   * their name; a float16/bfloat16 one whose readers are all Cast(to=FLOAT) in the main graph keeps its
   * name too (the casts go, their readers read it); otherwise a Cast(float32 → storage) produces `name`.
   */
  source(name: string, storage: FloatStorage): string {
    if (storage === 'float32' || this.dropFloatCasts(name, name)) return name;
    const source = this.fresh(`${name}::float32`);
    this.insert(node('Cast', [source], [name], `${source}/cast`, { to: storageDataType(storage) }));
    return source;
  }

  /** Makes `name` (held in `storage`) be computed from the float32 value `from`. */
  feed(name: string, storage: FloatStorage, from: string): void {
    if (storage !== 'float32' && this.dropFloatCasts(name, from)) return;
    if (storage === 'float32') this.insert(node('Identity', [from], [name], `${name}/identity`));
    else this.insert(node('Cast', [from], [name], `${name}/cast`, { to: storageDataType(storage) }));
  }

  /** When every reader of `name` is a main-graph Cast(to=FLOAT), removes them and lets their readers read `to`. */
  private dropFloatCasts(name: string, to: string): boolean {
    const consumers = allNodes(this.graph).filter((n) => n.input.includes(name));
    const topLevel = new Set(this.graph.node);
    const allCasts =
      consumers.length > 0 &&
      !this.graphOutputs.has(name) &&
      consumers.every((n) => n.opType === 'Cast' && isDefaultDomain(n) && topLevel.has(n) && getIntAttr(n, 'to') === DataType.FLOAT);
    if (!allCasts) return false;
    for (const cast of consumers) {
      const out = cast.output[0];
      if (this.graphOutputs.has(out)) {
        Object.assign(cast, node('Identity', [to], [out], cast.name));
      } else {
        this.graph.node.splice(this.graph.node.indexOf(cast), 1);
        renameUses(allNodes(this.graph), out, to);
        this.graph.valueInfo = this.graph.valueInfo.filter((v) => v.name !== out);
      }
    }
    this.graph.valueInfo = this.graph.valueInfo.filter((v) => v.name !== name);
    return true;
  }

  finish(): void {
    this.graph.node.unshift(...this.inserted);
    const read = new Set<string>();
    for (const n of allNodes(this.graph)) for (const name of n.input) read.add(name);
    for (const v of this.graph.output) read.add(v.name);
    const gone = new Set([...this.replaced, ...[...this.released].filter((name) => !read.has(name))]);
    this.graph.initializer = this.graph.initializer.filter((t) => !gone.has(t.name));
    // IR < 4 lists initializers among the inputs too.
    this.graph.input = this.graph.input.filter((v) => !gone.has(v.name));
  }
}

/**
 * Edits `graph` so each weight is read from one float32 value and returns weight name → that value's
 * name. The caller provides each value: as a float32 graph input [dims] (training, generation) or a
 * float32 initializer (export). The initializers the weights replace are removed:
 *
 * - float initializers: see `Substitution.source`;
 * - transposed copies of a tied embedding: a Transpose of the embedding's source produces each copy;
 * - DequantizeLinear weights: the node goes, the source produces its output;
 * - MatMulNBits weights: each node becomes MatMul(A, source) (+ Add of its bias).
 */
export function substituteWeightSources(graph: onnxTypes.Graph, weights: readonly WeightSpec[], options: SubstituteOptions = {}): Map<string, string> {
  const sub = new Substitution(graph);
  const sources = new Map<string, string>();
  for (const w of weights) {
    const q = w.quantized;
    if (q && options.keepQuantized) continue;
    if (!q) {
      const source = sub.source(w.name, w.storage);
      sub.replaced.add(w.name);
      for (const copy of w.transposedCopies ?? []) {
        const transposed = sub.fresh(`${copy}::transposed`);
        sub.insert(node('Transpose', [source], [transposed], `${transposed}/transpose`, { perm: [1, 0] }));
        sub.feed(copy, w.storage, transposed);
        sub.replaced.add(copy);
      }
      sources.set(w.name, source);
    } else if (q.kind === 'dequantize-linear') {
      for (const n of allNodes(graph).filter((x) => x.opType === 'DequantizeLinear' && x.output[0] === q.output)) {
        const g = owner(graph, n) as onnxTypes.Graph;
        g.node.splice(g.node.indexOf(n), 1);
      }
      sources.set(w.name, sub.source(q.output, w.storage));
      for (const name of [q.quantized, q.scale, q.zeroPoint]) if (name) sub.released.add(name);
    } else {
      // The packed initializer goes, so its name is free for the float32 weight.
      const source = w.name;
      let value = source;
      if (w.storage !== 'float32') {
        value = sub.fresh(`${w.name}::${w.storage}`);
        sub.insert(node('Cast', [source], [value], `${value}/cast`, { to: storageDataType(w.storage) }));
      }
      for (const n of allNodes(graph).filter((x) => x.opType === 'MatMulNBits' && x.domain === 'com.microsoft' && x.input[1] === q.packed)) {
        const g = owner(graph, n) as onnxTypes.Graph;
        const out = n.output[0];
        const bias = n.input[5];
        if (bias) {
          const product = sub.fresh(`${out}::matmul`);
          Object.assign(n, node('MatMul', [n.input[0], value], [product], n.name));
          g.node.splice(g.node.indexOf(n) + 1, 0, node('Add', [product, bias], [out], `${product}/bias`));
        } else {
          Object.assign(n, node('MatMul', [n.input[0], value], [out], n.name));
        }
      }
      sub.replaced.add(q.packed);
      for (const name of [q.scales, q.zeroPoints?.name]) if (name) sub.released.add(name);
      sources.set(w.name, source);
    }
  }
  sub.finish();
  return sources;
}
