// A rank-1 pass on the device (docs/gpu.md, "The route that needs no kernel of its own"): the host sends a
// seed's compact z (trainer/zo/rank1.ts: each matrix's factors, every other index's value, the shape's
// multipliers folded in exactly) and the graph expands it, u·vᵀ per matrix, then applies
// w = fl32(w + fl32(s'·z)) (and a second seed in order) as separate Mul and Add nodes: the host's roundings.
// No hash runs on the device; a pass touches ~24 bytes a parameter instead of the iid graph's hundreds.
import type { CompactLayout } from '../zo/rank1-compact';
import { DataType, encodeGraph, int64Tensor, node, valueInfo } from '../model/onnx';
import type { onnxTypes } from '../model/onnx';

export const RANK1_PASS_NAMES = {
  weights: 'w',
  compact: (k: number) => `zc_${k}`,
  scale: (k: number) => `scale_${k}`,
  output: 'w_out',
} as const;

/** Inputs per Concat: onnxruntime's WebGPU shaders bind a limited number of storage buffers. */
const CONCAT_FANIN = 6;

/** The pass graph for `seeds` (1 or 2) seeds over a layout's span. */
export function buildRank1PassGraph(layout: CompactLayout, seeds: 1 | 2): Uint8Array {
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
  const slice = (input: string, from: number, to: number): string => {
    const out = fresh('slice');
    nodes.push(node('Slice', [input, int64([from]), int64([to])], [out], out));
    return out;
  };
  const reshape = (input: string, dims: number[]): string => {
    const out = fresh('reshape');
    nodes.push(node('Reshape', [input, int64(dims)], [out], out));
    return out;
  };
  /** Concatenates in order, in a tree of CONCAT_FANIN-input nodes. */
  const concat = (parts: string[]): string => {
    let level = parts;
    while (level.length > 1) {
      const next: string[] = [];
      for (let i = 0; i < level.length; i += CONCAT_FANIN) {
        const group = level.slice(i, i + CONCAT_FANIN);
        if (group.length === 1) {
          next.push(group[0]);
          continue;
        }
        const out = fresh('concat');
        nodes.push(node('Concat', group, [out], out, { axis: 0 }));
        next.push(out);
      }
      level = next;
    }
    return level[0];
  };
  const expand = (k: number): string => {
    const compact = RANK1_PASS_NAMES.compact(k);
    const parts = layout.segments.map((s) => {
      if (s.kind === 'values') return slice(compact, s.at, s.at + s.length);
      const u = reshape(slice(compact, s.at, s.at + s.rows), [s.rows, 1]);
      const v = reshape(slice(compact, s.at + s.rows, s.at + s.rows + s.cols), [1, s.cols]);
      const outer = fresh('outer');
      // u·m and v are integers times a power of two, their product below 2^17 times it: exact in float32.
      nodes.push(node('Mul', [u, v], [outer], outer));
      return reshape(outer, [s.rows * s.cols]);
    });
    return concat(parts);
  };
  let w: string = RANK1_PASS_NAMES.weights;
  for (let k = 0; k < seeds; k++) {
    const z = expand(k);
    const step = fresh('step');
    nodes.push(node('Mul', [z, RANK1_PASS_NAMES.scale(k)], [step], step));
    const out = k === seeds - 1 ? RANK1_PASS_NAMES.output : fresh('w');
    nodes.push(node('Add', [w, step], [out], out));
    w = out;
  }
  const inputs = [valueInfo(RANK1_PASS_NAMES.weights, DataType.FLOAT, [layout.span])];
  for (let k = 0; k < seeds; k++) {
    inputs.push(valueInfo(RANK1_PASS_NAMES.compact(k), DataType.FLOAT, [layout.length]));
    inputs.push(valueInfo(RANK1_PASS_NAMES.scale(k), DataType.FLOAT, [1]));
  }
  return encodeGraph({
    name: `rank1_pass_${seeds}`,
    node: nodes,
    initializer: initializers,
    input: inputs,
    output: [valueInfo(RANK1_PASS_NAMES.output, DataType.FLOAT, [layout.span])],
  });
}
