// What a graph costs a device, counted from the graph itself (not timed): node counts by op type, the
// kernel launches (dispatches) it needs, and the bytes its kernels read and write at given input sizes.
// The counts follow from the ONNX model and the input sizes alone, so they hold on any device; a GPU's
// speed turns them into time (gpu-model.ts). Shapes are propagated for the ops the perturbation graphs
// use and for the weight Slices of the device forward; a node whose output size is not derived here is
// counted in `unsized` (its bytes are not in the totals).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DataType, decodeModel, getIntAttr, toNumber, valueInfoDims, valueInfoElemType, type onnxTypes } from '../model/onnx';

/**
 * Ops whose output aliases their input (onnxruntime plans them in place: no kernel runs, nothing moves).
 * Shape is answered from the tensor's metadata on the host.
 */
const VIEW_OPS = new Set(['Reshape', 'Squeeze', 'Unsqueeze', 'Flatten', 'Identity', 'Shape']);
/** Ops that read only the elements they output from their first input (a table gather, a slice). */
const READS_OUTPUT_SIZED = new Set(['Gather', 'Slice']);
const ELEMENTWISE = new Set([
  'Add',
  'Sub',
  'Mul',
  'Div',
  'BitwiseXor',
  'BitwiseAnd',
  'BitwiseOr',
  'BitShift',
  'Pow',
  'Max',
  'Min',
  'Equal',
  'Less',
  'Greater',
  'Where',
]);

const ELEMENT_BYTES: Partial<Record<number, number>> = {
  [DataType.FLOAT]: 4,
  [DataType.UINT32]: 4,
  [DataType.INT32]: 4,
  [DataType.INT64]: 8,
  [DataType.UINT64]: 8,
  [DataType.DOUBLE]: 8,
  [DataType.FLOAT16]: 2,
  [DataType.INT16]: 2,
  [DataType.UINT16]: 2,
  [DataType.INT8]: 1,
  [DataType.UINT8]: 1,
  [DataType.BOOL]: 1,
};

export interface NodeCost {
  readonly op: string;
  readonly output: string;
  /** Elements of the (first) output; null when its size is not derived here. */
  readonly elements: number | null;
  /** Whether a kernel runs: not a view, not folded into a constant at session creation. */
  readonly dispatch: boolean;
  readonly readBytes: number;
  readonly writeBytes: number;
}

export interface GraphCost {
  readonly nodes: number;
  /** Nodes by op type, sorted by count. */
  readonly byOp: Readonly<Record<string, number>>;
  /** Kernel launches per run. */
  readonly dispatches: number;
  readonly readBytes: number;
  readonly writeBytes: number;
  /** Dispatched nodes whose output has at least `largeElements` elements (weight- or pair-sized buffers). */
  readonly largeOutputs: number;
  /** Dispatched nodes whose output size is not derived here (their bytes are not counted). */
  readonly unsized: number;
  /** Elements written by dispatched nodes: one arithmetic operation (or table read) each. */
  readonly elementOps: number;
  /**
   * Device memory live at once during a run, at its peak: the non-constant inputs (held by the caller
   * throughout), the outputs from where they are made, and each intermediate from its node to its last
   * reader, in node order, a view sharing its input's buffer. An upper bound on what a planner that never
   * reuses a dying input's buffer in place would hold; null when a size is not derived here.
   */
  readonly peakBytes: number | null;
  readonly perNode: readonly NodeCost[];
}

/** An input's size for the count: its dims, and for a small integer input its value (e.g. pair_count). */
export interface InputSize {
  readonly dims: readonly number[];
  readonly value?: readonly number[];
}

interface Value {
  dims: number[] | null;
  type: number;
  /** Small integer tensors (shapes, scalars): their values, when known. */
  value: number[] | null;
  /** Known before any run (an initializer or computed from initializers only): folded by onnxruntime. */
  constant: boolean;
}

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

function initializerValue(t: onnxTypes.Tensor): number[] | null {
  const count = product(t.dims.map(toNumber));
  if (count > 64) return null;
  if (t.int64Data.length > 0) return t.int64Data.map(toNumber);
  if (t.int32Data.length > 0) return [...t.int32Data];
  const raw = t.rawData;
  if (!raw || raw.byteLength === 0) return null;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    if (t.dataType === DataType.INT64) out.push(Number(view.getBigInt64(i * 8, true)));
    else if (t.dataType === DataType.INT32) out.push(view.getInt32(i * 4, true));
    else if (t.dataType === DataType.UINT32) out.push(view.getUint32(i * 4, true));
    else return null;
  }
  return out;
}

function broadcast(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    out.push(x === 1 ? y : x);
  }
  return out;
}

function elementwiseValue(op: string, a: readonly number[], b: readonly number[]): number[] | null {
  const n = Math.max(a.length, b.length);
  if ((a.length !== n && a.length !== 1) || (b.length !== n && b.length !== 1)) return null;
  const f = {
    Add: (x: number, y: number) => x + y,
    Sub: (x: number, y: number) => x - y,
    Mul: (x: number, y: number) => x * y,
    Div: (x: number, y: number) => Math.trunc(x / y),
  }[op];
  if (!f) return null;
  return Array.from({ length: n }, (_, i) => f(a[a.length === 1 ? 0 : i], b[b.length === 1 ? 0 : i]));
}

/** Output dims, type and value of a node from its inputs' (null dims: not derived). */
function infer(n: onnxTypes.Node, inputs: (Value | undefined)[]): Omit<Value, 'constant'> {
  const [x, y] = inputs;
  const type = x?.type ?? DataType.UNDEFINED;
  const unknown = { dims: null, type, value: null };
  const op = n.opType;
  if (ELEMENTWISE.has(op)) {
    const present = inputs.filter((v): v is Value => v !== undefined);
    if (present.some((v) => v.dims === null)) return unknown;
    const dims = present.reduce<number[]>((d, v) => broadcast(d, v.dims as number[]), []);
    const value = x?.value && y?.value ? elementwiseValue(op, x.value, y.value) : null;
    const outType = ['Equal', 'Less', 'Greater'].includes(op) ? DataType.BOOL : op === 'Where' ? (y?.type ?? type) : type;
    return { dims, type: outType, value };
  }
  switch (op) {
    case 'Identity':
      return x ? { dims: x.dims, type, value: x.value } : unknown;
    case 'Cast':
      return { dims: x?.dims ?? null, type: getIntAttr(n, 'to') ?? type, value: x?.value ?? null };
    case 'Shape':
      return x?.dims ? { dims: [x.dims.length], type: DataType.INT64, value: [...x.dims] } : { dims: null, type: DataType.INT64, value: null };
    case 'Range': {
      const [start, limit, delta] = inputs.map((v) => v?.value?.[0]);
      if (start === undefined || limit === undefined || delta === undefined) return unknown;
      return { dims: [Math.max(0, Math.ceil((limit - start) / delta))], type, value: null };
    }
    case 'Squeeze': {
      if (!x?.dims) return unknown;
      const from = x.dims;
      const axes = (y?.value ?? from.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)).map((a) => (a < 0 ? a + from.length : a));
      return { dims: from.filter((_, i) => !axes.includes(i)), type, value: x.value };
    }
    case 'Unsqueeze': {
      if (!x?.dims || !y?.value) return unknown;
      const rank = x.dims.length + y.value.length;
      const axes = y.value.map((a) => (a < 0 ? a + rank : a));
      const dims: number[] = [];
      let j = 0;
      for (let i = 0; i < rank; i++) dims.push(axes.includes(i) ? 1 : x.dims[j++]);
      return { dims, type, value: x.value };
    }
    case 'Reshape': {
      const from = x?.dims;
      if (!from || !y?.value) return unknown;
      const shape = y.value.map((d, i) => (d === 0 ? from[i] : d));
      const known = product(shape.filter((d) => d !== -1));
      return { dims: shape.map((d) => (d === -1 ? product(from) / known : d)), type, value: x.value };
    }
    case 'Concat': {
      const present = inputs.filter((v): v is Value => v !== undefined);
      if (present.some((v) => v.dims === null)) return unknown;
      const first = present[0].dims as number[];
      const axis = (getIntAttr(n, 'axis') ?? 0) < 0 ? (getIntAttr(n, 'axis') ?? 0) + first.length : (getIntAttr(n, 'axis') ?? 0);
      const dims = [...first];
      dims[axis] = present.reduce((s, v) => s + (v.dims as number[])[axis], 0);
      const value = present.every((v) => v.value) ? present.flatMap((v) => v.value as number[]) : null;
      return { dims, type, value };
    }
    case 'Gather': {
      if (!x?.dims || !y?.dims || (getIntAttr(n, 'axis') ?? 0) !== 0) return unknown;
      const table = x.value;
      const value = table && y.value ? y.value.map((i) => table[i < 0 ? i + table.length : i]) : null;
      return { dims: [...y.dims, ...x.dims.slice(1)], type, value };
    }
    case 'Slice': {
      const [, starts, ends, axesIn, stepsIn] = inputs;
      if (!x?.dims || !starts?.value || !ends?.value) return unknown;
      const dims = [...x.dims];
      const axes = axesIn?.value ?? starts.value.map((_, i) => i);
      for (let i = 0; i < axes.length; i++) {
        const axis = axes[i] < 0 ? axes[i] + dims.length : axes[i];
        const step = stepsIn?.value?.[i] ?? 1;
        if (step !== 1) return unknown;
        const size = x.dims[axis];
        const clamp = (v: number): number => Math.min(size, Math.max(0, v < 0 ? v + size : v));
        dims[axis] = Math.max(0, clamp(ends.value[i]) - clamp(starts.value[i]));
      }
      const value = x.value && dims.length === 1 ? x.value.slice(starts.value[0], starts.value[0] + dims[0]) : null;
      return { dims, type, value };
    }
    default:
      return unknown;
  }
}

/**
 * The cost of one run of `model` with inputs of the given sizes (inputs not named take their declared
 * static dims). `largeElements`: the size from which an output counts as a large buffer (e.g. n/2 pairs).
 */
export function graphCost(model: Uint8Array, sizes: Readonly<Record<string, InputSize>>, largeElements = Infinity): GraphCost {
  const graph = decodeModel(model).graph;
  const values = new Map<string, Value>();
  for (const t of graph.initializer) values.set(t.name, { dims: t.dims.map(toNumber), type: t.dataType, value: initializerValue(t), constant: true });
  for (const input of graph.input) {
    if (values.has(input.name)) continue;
    const given = sizes[input.name];
    const declared = valueInfoDims(input);
    const dims = given ? [...given.dims] : declared && declared.every((d): d is number => typeof d === 'number') ? declared : null;
    values.set(input.name, { dims, type: valueInfoElemType(input), value: given?.value ? [...given.value] : null, constant: false });
  }
  const perNode: NodeCost[] = [];
  const byOp: Record<string, number> = {};
  let readBytes = 0;
  let writeBytes = 0;
  let dispatches = 0;
  let largeOutputs = 0;
  let unsized = 0;
  let elementOps = 0;
  for (const n of graph.node) {
    byOp[n.opType] = (byOp[n.opType] ?? 0) + 1;
    const inputs = n.input.map((name) => (name === '' ? undefined : values.get(name)));
    const out = infer(n, inputs);
    const constant = n.opType === 'Shape' ? out.value !== null : n.input.length > 0 && inputs.every((v) => v === undefined || v.constant);
    for (const name of n.output) values.set(name, { ...out, constant });
    const dispatch = !constant && !VIEW_OPS.has(n.opType);
    const elements = out.dims ? product(out.dims) : null;
    let read = 0;
    let write = 0;
    if (dispatch) {
      dispatches++;
      const bytesOf = (v: Value | undefined): number | null => (v?.dims ? product(v.dims) * (ELEMENT_BYTES[v.type] ?? 4) : null);
      const parts = inputs.map((v, i) =>
        READS_OUTPUT_SIZED.has(n.opType) && i === 0 && elements !== null && v ? elements * (ELEMENT_BYTES[v.type] ?? 4) : bytesOf(v),
      );
      const written = elements === null ? null : elements * (ELEMENT_BYTES[out.type] ?? 4);
      if (written === null || parts.some((p) => p === null)) unsized++;
      else {
        read = parts.reduce<number>((s, p) => s + (p ?? 0), 0);
        write = written;
        readBytes += read;
        writeBytes += write;
      }
      if (elements !== null && elements >= largeElements) largeOutputs++;
      elementOps += elements ?? 0;
    }
    perNode.push({ op: n.opType, output: n.output[0], elements, dispatch, readBytes: read, writeBytes: write });
  }
  const sorted = Object.fromEntries(Object.entries(byOp).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
  const peakBytes = peakLiveBytes(graph, values);
  return { nodes: graph.node.length, byOp: sorted, dispatches, readBytes, writeBytes, largeOutputs, unsized, elementOps, peakBytes, perNode };
}

/** GraphCost.peakBytes, over the values graphCost derived. */
function peakLiveBytes(graph: onnxTypes.Graph, values: ReadonlyMap<string, Value>): number | null {
  const bytesOf = (v: Value | undefined): number | null => (v?.dims ? product(v.dims) * (ELEMENT_BYTES[v.type] ?? 4) : null);
  /** Each value's buffer: its own, or for a view its input's. */
  const buffer = new Map<string, string>();
  const size = new Map<string, number>();
  const lastUse = new Map<string, number>();
  const held = new Set<string>();
  let live = 0;
  for (const input of graph.input) {
    const v = values.get(input.name);
    if (!v || v.constant) continue;
    const bytes = bytesOf(v);
    if (bytes === null) return null;
    buffer.set(input.name, input.name);
    held.add(input.name);
    live += bytes;
  }
  for (const output of graph.output) held.add(output.name);
  graph.node.forEach((n, i) => {
    for (const name of n.input) {
      const b = buffer.get(name);
      if (b !== undefined) lastUse.set(b, i);
    }
    for (const name of n.output) {
      const v = values.get(name);
      if (!v || v.constant) continue;
      buffer.set(name, VIEW_OPS.has(n.opType) && n.opType !== 'Shape' ? (buffer.get(n.input[0]) ?? name) : name);
    }
  });
  // A graph output that is a view keeps its base buffer to the end.
  for (const name of [...held]) {
    const b = buffer.get(name);
    if (b !== undefined) held.add(b);
  }
  // Each buffer a node makes is freed after its last reader (or at once when nothing reads it), unless held.
  const freedAfter = new Map<number, string[]>();
  graph.node.forEach((n, i) => {
    for (const name of n.output) {
      if (buffer.get(name) !== name || held.has(name)) continue;
      const at = lastUse.get(name) ?? i;
      freedAfter.set(at, [...(freedAfter.get(at) ?? []), name]);
    }
  });
  let peak = live;
  for (let i = 0; i < graph.node.length; i++) {
    for (const name of graph.node[i].output) {
      if (buffer.get(name) !== name) continue;
      const bytes = bytesOf(values.get(name));
      if (bytes === null) return null;
      size.set(name, bytes);
      live += bytes;
    }
    peak = Math.max(peak, live);
    for (const name of freedAfter.get(i) ?? []) live -= size.get(name) as number;
  }
  return peak;
}

/** `count ×op, …` for a line of a report. */
export function describeOps(byOp: Readonly<Record<string, number>>): string {
  return Object.entries(byOp)
    .map(([op, count]) => `${count} ${op}`)
    .join(', ');
}

/**
 * The graph onnxruntime runs after its optimizations for these session options (constant folding of the
 * shape subgraphs, common subexpressions, fusions), read back from `optimizedModelFilePath`.
 */
export async function optimizedGraph(model: Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<Uint8Array> {
  const dir = mkdtempSync(join(tmpdir(), 'fedkseed-optimized-'));
  const file = join(dir, 'optimized.onnx');
  try {
    const session = await ort.InferenceSession.create(model, { ...options, optimizedModelFilePath: file });
    await session.release();
    return new Uint8Array(readFileSync(file));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Which perturbation graphs a step runs: the hash in every pass, or the device's z kept between passes. */
export type StepPasses = 'hash-every-pass' | 'cached-z' | 'no-kept-z';

export interface PassCount {
  /** What the pass does in the step. */
  readonly role: string;
  readonly cost: GraphCost;
}

export interface PerturbationStepCost {
  readonly passes: readonly PassCount[];
  readonly dispatches: number;
  /** Device memory bytes read and written per parameter, over the step's passes. */
  readonly bytesPerParameter: number;
  readonly elementOpsPerParameter: number;
  /** The larger pass's peak device memory over the span's float32 bytes (4n): weights-sized buffers live at once. */
  readonly peakOverWeights: number | null;
}

/**
 * The perturbation passes of one steady-state ZO step over n parameters (n even): restore/update and the
 * next seed, then −2εz. 'hash-every-pass' hashes each seed in each pass (a fused run of two hashes, then
 * one); 'cached-z' (DeviceWeights) runs one seed a run, reading the z its previous pass kept and hashing the
 * new seed only; 'no-kept-z' runs one seed a run, hashing each (a lean rank-1 set: DeviceWeightsOptions).
 */
export function perturbationStepCost(n: number, passes: StepPasses, build: (sources: readonly ('hash' | 'cached')[]) => Uint8Array): PerturbationStepCost {
  if (!Number.isInteger(n) || n < 2 || n % 2 !== 0) throw new RangeError(`n must be an even integer ≥ 2, got ${n}`);
  const plans: [string, ('hash' | 'cached')[]][] =
    passes === 'hash-every-pass'
      ? [
          ['restore/update + next seed (two hashes)', ['hash', 'hash']],
          ['−2εz (hash)', ['hash']],
        ]
      : passes === 'no-kept-z'
        ? [
            ['restore/update (hash)', ['hash']],
            ['next seed (hash)', ['hash']],
            ['−2εz (hash)', ['hash']],
          ]
        : [
            ['restore/update (kept z)', ['cached']],
            ['next seed (hash, z kept)', ['hash']],
            ['−2εz (kept z)', ['cached']],
          ];
  const sizes = { w: { dims: [n] }, pair_count: { dims: [], value: [n / 2] }, m: { dims: [n] }, z_0: { dims: [n] }, z_1: { dims: [n] } };
  const counted = plans.map(([role, sources]) => ({ role, cost: graphCost(build(sources), sizes, n / 2) }));
  const total = (f: (c: GraphCost) => number): number => counted.reduce((s, p) => s + f(p.cost), 0);
  return {
    passes: counted,
    dispatches: total((c) => c.dispatches),
    bytesPerParameter: total((c) => c.readBytes + c.writeBytes) / n,
    elementOpsPerParameter: total((c) => c.elementOps) / n,
    peakOverWeights: counted.some((p) => p.cost.peakBytes === null) ? null : Math.max(...counted.map((p) => p.cost.peakBytes as number)) / (4 * n),
  };
}

export interface ForwardCost {
  readonly cost: GraphCost;
  /** Slices of the weight span or of its float16 copy (one per trainable tensor and precision read). */
  readonly weightSlices: number;
  /**
   * Device bytes that move the weights in one forward: each Slice reads and writes its tensor, and the
   * op consuming it reads it once more (12 bytes per float32 parameter); a float16 forward's Cast of the
   * span reads 4 and writes 2 bytes a parameter, and its slices move 2 bytes an element three times.
   * Activations are not included (they are in `cost`).
   */
  readonly weightBytes: number;
  /** Parameters sliced from the float16 copy of the span (the weights float16 products read). */
  readonly float16Parameters: number;
}

/** The weight traffic of a device forward graph (rewriteForDevice), from its span Slices' sizes. */
export function forwardCost(model: Uint8Array, spanInput: string): ForwardCost {
  const cost = graphCost(model, {});
  const graph = decodeModel(model).graph;
  const casts = new Set(graph.node.filter((n) => n.opType === 'Cast' && n.input[0] === spanInput).map((n) => n.output[0]));
  const spans = new Set([spanInput, ...casts]);
  const slices = new Set(graph.node.filter((n) => n.opType === 'Slice' && spans.has(n.input[0])).map((n) => n.output[0]));
  const halfSlices = new Set(graph.node.filter((n) => n.opType === 'Slice' && casts.has(n.input[0])).map((n) => n.output[0]));
  let weightBytes = 0;
  let float16Parameters = 0;
  for (const node of cost.perNode) {
    if (slices.has(node.output)) weightBytes += node.readBytes + 2 * node.writeBytes;
    else if (casts.has(node.output)) weightBytes += node.readBytes + node.writeBytes;
    if (halfSlices.has(node.output)) float16Parameters += node.elements ?? 0;
  }
  return { cost, weightSlices: slices.size, weightBytes, float16Parameters };
}
