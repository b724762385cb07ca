// A rank-1 pass on the device (docs/gpu.md, "The route that needs no kernel of its own"): the graph hashes a
// seed's compact z (trainer/zo/rank1-compact.ts: each matrix's factors, every other index's value, the
// shape's multipliers folded in exactly) from its key, expands it u·vᵀ per matrix (by rows of the model's
// width in two span-sized ops, else per matrix and a Concat tree), then applies w = fl32(w + fl32(s'·z))
// (and a second seed in order) as separate Mul and Add nodes: the host's roundings.
// The hash runs over the compact z's indices only (~0.2% of the span), so per seed only the key's bytes and
// the scale cross the bus, whatever the model's size; a pass touches tens of bytes a parameter, not the iid
// graph's hundreds.
import type { CompactLayout } from '../zo/rank1-compact';
import { ZQ, ZQ_SIZE } from '../zo/generator';
import { ZR } from '../zo/rank1';
import { DataType, encodeGraph, floatTensor, int64Tensor, node, nodeAdder, rawTensor, usedInitializers, valueInfo, type AddNode } from '../model/onnx';
import type { onnxTypes } from '../model/onnx';
import { arithmeticHash, arithmeticHashInitializers, keyByteName } from './arithmetic-hash';

export const RANK1_PASS_NAMES = {
  weights: 'w',
  /** Seed k's key bytes (int32 [1] each, from keyBytes), for a seed hashed here. */
  keyByte: keyByteName,
  scale: (k: number) => `scale_${k}`,
  /** Seed k's z already on the device (float32 [span]), expanded by an earlier pass. */
  cachedZ: (k: number) => `z_${k}`,
  output: 'w_out',
  /** The last seed's z, when this pass expanded it: a step's next passes of that seed read it. */
  zOutput: 'z_out',
} as const;

/** Where a pass's seed comes from: its key, hashed and expanded here, or its z kept on the device. */
export type Rank1Source = 'hash' | 'cached';

/** Inputs per Concat: onnxruntime's WebGPU shaders bind a limited number of storage buffers. */
const CONCAT_FANIN = 6;

/** The narrowest rows the row expansion takes: its two row indices cost 8/W bytes a parameter. */
export const MIN_ROW_WIDTH = 32;

/**
 * The layout's row width W: the largest that divides the span and every segment's offset, length and (for a
 * block) column count. Cut into rows of W, every row of the span is one scalar times one W-vector: a block's
 * row piece is u_r times a piece of v, a run of values is 1 times a piece of them. For transformer layouts W is
 * the model width (768 for GPT-2 small); 0 for an empty layout.
 */
export function rowWidth(layout: CompactLayout): number {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  let w = layout.span;
  for (const s of layout.segments) w = gcd(gcd(w, s.offset), s.kind === 'block' ? s.cols : s.length);
  return w;
}

/**
 * The row expansion's indices into the compact z with a 1 appended (at layout.length): the W-vectors, each a
 * piece of a block's v or of a run of values (vectors × W), and per row of the span its vector and its scalar
 * (u_r·m for a block's row, the appended 1 for values).
 */
export function rowPlan(layout: CompactLayout, width: number): { vectors: Int32Array; rowVector: Int32Array; rowScalar: Int32Array } {
  const vectors: number[] = [];
  const rowVector = new Int32Array(layout.span / width);
  const rowScalar = new Int32Array(layout.span / width);
  for (const s of layout.segments) {
    const first = vectors.length / width;
    const row = s.offset / width;
    if (s.kind === 'block') {
      for (let c = 0; c < s.cols; c++) vectors.push(s.at + s.rows + c);
      const perRow = s.cols / width;
      for (let r = 0; r < s.rows; r++)
        for (let j = 0; j < perRow; j++) {
          rowVector[row + r * perRow + j] = first + j;
          rowScalar[row + r * perRow + j] = s.at + r;
        }
    } else {
      for (let t = 0; t < s.length; t++) vectors.push(s.at + t);
      for (let j = 0; j < s.length / width; j++) {
        rowVector[row + j] = first + j;
        rowScalar[row + j] = layout.length;
      }
    }
  }
  return { vectors: Int32Array.from(vectors), rowVector, rowScalar };
}

/**
 * Where each compact value's table index comes from: the hashed pairs (each pair once, in order), for each
 * position the pair's half it takes (2q or 2q + 1), its table (ZQ at 0, ZR at ZQ_SIZE in one table) and its
 * multiplier. Hash indices are a block's offset + 0..R+C−1 for its factors, the index itself elsewhere.
 */
export function compactPlan(layout: CompactLayout): { pairs: Uint32Array; select: Int32Array; tableBase: Int32Array; multipliers: Float32Array } {
  const pairs: number[] = [];
  const select = new Int32Array(layout.length);
  const tableBase = new Int32Array(layout.length);
  const multipliers = new Float32Array(layout.length);
  const put = (at: number, index: number, factor: boolean, multiplier: number): void => {
    const pair = Math.floor(index / 2);
    if (pairs.at(-1) !== pair) pairs.push(pair);
    select[at] = 2 * (pairs.length - 1) + (index % 2);
    tableBase[at] = factor ? ZQ_SIZE : 0;
    multipliers[at] = multiplier;
  };
  for (const s of layout.segments) {
    if (s.kind === 'block') {
      for (let r = 0; r < s.rows; r++) put(s.at + r, s.offset + r, true, s.multiplier);
      for (let c = 0; c < s.cols; c++) put(s.at + s.rows + c, s.offset + s.rows + c, true, 1);
    } else {
      for (let t = 0; t < s.length; t++) put(s.at + t, s.offset + t, false, s.multiplier);
    }
  }
  return { pairs: Uint32Array.from(pairs), select, tableBase, multipliers };
}

/** ZQ then ZR, as float32 (their entries are small integers, exact). */
function stackedTables(): Float32Array {
  const table = new Float32Array(2 * ZQ_SIZE);
  table.set(ZQ);
  table.set(ZR, ZQ_SIZE);
  return table;
}

/**
 * Nodes that hash each seed's compact z from its key bytes: the pairs' table indices (the generator's hash,
 * one premix for all seeds), each position's half, its table's value, times its multiplier (a power of two:
 * exact). Returns each seed's compact z by seed (float32 [layout.length]), compactValues bit for bit.
 */
function compactNodes(layout: CompactLayout, add: AddNode, initializers: onnxTypes.Tensor[], seeds: readonly number[]): Map<number, string> {
  const plan = compactPlan(layout);
  initializers.push(
    ...arithmeticHashInitializers(),
    rawTensor('r1_pairs', DataType.UINT32, [plan.pairs.length], new Uint8Array(plan.pairs.buffer)),
    rawTensor('r1_select', DataType.INT32, [layout.length], new Uint8Array(plan.select.buffer)),
    rawTensor('r1_table_base', DataType.INT32, [layout.length], new Uint8Array(plan.tableBase.buffer)),
    floatTensor('r1_tables', stackedTables(), [2 * ZQ_SIZE]),
    floatTensor('r1_multipliers', plan.multipliers, [layout.length]),
    int64Tensor('r1_flat', [-1]),
  );
  const hash = arithmeticHash(add);
  const premix = hash.premix('r1_pairs');
  const out = new Map<number, string>();
  for (const k of seeds) {
    const t = `s${k}`;
    const halves = add('Reshape', [hash.seedIndices(premix, (j) => RANK1_PASS_NAMES.keyByte(k, j), t), 'r1_flat'], `${t}_halves`);
    const index = add('Add', [add('Gather', [halves, 'r1_select'], `${t}_sel`, { axis: 0 }), 'r1_table_base'], `${t}_index`);
    // A gap's value is 0·Zq: −0 where Zq < 0, which adds to any weight as +0 does except −0 itself, and a
    // gap (between tensors) holds +0.
    out.set(k, add('Mul', [add('Gather', ['r1_tables', index], `${t}_table`, { axis: 0 }), 'r1_multipliers'], `${t}_compact`));
  }
  return out;
}

/** Seed 0's compact z, hashed from its key bytes: the first half of a pass, as its own graph (for tests). */
export function buildRank1CompactGraph(layout: CompactLayout): Uint8Array {
  const nodes: onnxTypes.Node[] = [];
  const initializers: onnxTypes.Tensor[] = [];
  const compact = compactNodes(layout, nodeAdder(nodes), initializers, [0]).get(0) as string;
  nodes.push(node('Identity', [compact], ['compact'], 'compact'));
  return encodeGraph({
    name: 'rank1_compact',
    node: nodes,
    initializer: usedInitializers(initializers, nodes),
    input: [0, 1, 2, 3].map((j) => valueInfo(RANK1_PASS_NAMES.keyByte(0, j), DataType.INT32, [1])),
    output: [valueInfo('compact', DataType.FLOAT, [layout.length])],
  });
}

/**
 * The pass graph for one or two seeds over a layout's span, each hashed and expanded from its key or read
 * from its kept z; the last, when expanded, is also an output (kept for the step's next passes) unless
 * `keepZ` is false, which frees it inside the run once its step is made.
 */
export function buildRank1PassGraph(layout: CompactLayout, sources: readonly Rank1Source[], keepZ = true): Uint8Array {
  const seeds = sources.length;
  const nodes: onnxTypes.Node[] = [];
  const initializers: onnxTypes.Tensor[] = [];
  const constants = new Map<string, string>();
  const int64 = (values: number[]): string => {
    const key = values.join(',');
    let name = constants.get(key);
    if (!name) {
      name = `c${constants.size}`;
      constants.set(key, name);
      initializers.push(int64Tensor(name, values));
    }
    return name;
  };
  let id = 0;
  const fresh = (what: string): string => `${what}_${id++}`;
  const add = nodeAdder(nodes);
  const slice = (input: string, from: number, to: number): string => add('Slice', [input, int64([from]), int64([to])], fresh('slice'));
  const reshape = (input: string, dims: number[]): string => add('Reshape', [input, int64(dims)], fresh('reshape'));
  /** Concatenates in order, in a tree of CONCAT_FANIN-input nodes. */
  const concat = (parts: string[]): string => {
    let level = parts;
    while (level.length > 1) {
      const next: string[] = [];
      for (let i = 0; i < level.length; i += CONCAT_FANIN) {
        const group = level.slice(i, i + CONCAT_FANIN);
        next.push(group.length === 1 ? group[0] : add('Concat', group, fresh('concat'), { axis: 0 }));
      }
      level = next;
    }
    return level[0];
  };
  const hashed = sources.flatMap((source, k) => (source === 'hash' ? [k] : []));
  const compacts = hashed.length > 0 ? compactNodes(layout, add, initializers, hashed) : new Map<number, string>();
  const width = rowWidth(layout);
  const byRows = width >= MIN_ROW_WIDTH;
  if (byRows && hashed.length > 0) {
    const plan = rowPlan(layout, width);
    initializers.push(
      rawTensor('r1_vectors', DataType.INT32, [plan.vectors.length], new Uint8Array(plan.vectors.buffer)),
      rawTensor('r1_row_vector', DataType.INT32, [plan.rowVector.length], new Uint8Array(plan.rowVector.buffer)),
      rawTensor('r1_row_scalar', DataType.INT32, [plan.rowScalar.length], new Uint8Array(plan.rowScalar.buffer)),
      floatTensor('r1_one', [1], [1]),
    );
  }
  /**
   * z over the span from a compact z in two span-sized ops whatever the number of tensors: each row of W is
   * its W-vector (a Gather of rows) times its scalar (a broadcast Mul), u_r·v_c exact as below.
   */
  const expandByRows = (compact: string): string => {
    const withOne = add('Concat', [compact, 'r1_one'], fresh('with_one'), { axis: 0 });
    const vectors = reshape(add('Gather', [withOne, 'r1_vectors'], fresh('vectors'), { axis: 0 }), [-1, width]);
    const byRow = add('Gather', [vectors, 'r1_row_vector'], fresh('row_vectors'), { axis: 0 });
    const scalars = reshape(add('Gather', [withOne, 'r1_row_scalar'], fresh('row_scalars'), { axis: 0 }), [layout.span / width, 1]);
    return reshape(add('Mul', [byRow, scalars], fresh('rows')), [layout.span]);
  };
  const expand = (k: number): string => {
    const compact = compacts.get(k) as string;
    if (byRows) return expandByRows(compact);
    const parts = layout.segments.map((s) => {
      if (s.kind === 'values') return slice(compact, s.at, s.at + s.length);
      const u = reshape(slice(compact, s.at, s.at + s.rows), [s.rows, 1]);
      const v = reshape(slice(compact, s.at + s.rows, s.at + s.rows + s.cols), [1, s.cols]);
      // u·m and v are integers times a power of two, their product below 2^17 times it: exact in float32.
      return reshape(add('Mul', [u, v], fresh('outer')), [s.rows * s.cols]);
    });
    return concat(parts);
  };
  let w: string = RANK1_PASS_NAMES.weights;
  const outputs = [valueInfo(RANK1_PASS_NAMES.output, DataType.FLOAT, [layout.span])];
  for (let k = 0; k < seeds; k++) {
    let z: string = RANK1_PASS_NAMES.cachedZ(k);
    if (sources[k] === 'hash') {
      z = expand(k);
      if (k === seeds - 1 && keepZ) {
        nodes.push(node('Identity', [z], [RANK1_PASS_NAMES.zOutput], 'keep_z'));
        outputs.push(valueInfo(RANK1_PASS_NAMES.zOutput, DataType.FLOAT, [layout.span]));
      }
    }
    const step = add('Mul', [z, RANK1_PASS_NAMES.scale(k)], fresh('step'));
    w = add('Add', [w, step], k === seeds - 1 ? RANK1_PASS_NAMES.output : fresh('w'));
  }
  const inputs = [valueInfo(RANK1_PASS_NAMES.weights, DataType.FLOAT, [layout.span])];
  sources.forEach((source, k) => {
    if (source === 'hash') for (let j = 0; j < 4; j++) inputs.push(valueInfo(RANK1_PASS_NAMES.keyByte(k, j), DataType.INT32, [1]));
    else inputs.push(valueInfo(RANK1_PASS_NAMES.cachedZ(k), DataType.FLOAT, [layout.span]));
    inputs.push(valueInfo(RANK1_PASS_NAMES.scale(k), DataType.FLOAT, [1]));
  });
  return encodeGraph({
    name: `rank1_pass_${sources.join('_')}`,
    node: nodes,
    initializer: usedInitializers(initializers, nodes),
    input: inputs,
    output: outputs,
  });
}
