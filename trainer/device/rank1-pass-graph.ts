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
  /** Seed k's z already on the device (float32 [span]), expanded by an earlier pass. */
  cachedZ: (k: number) => `z_${k}`,
  output: 'w_out',
  /** The last seed's z, when this pass expanded it: a step's next passes of that seed read it. */
  zOutput: 'z_out',
} as const;

/** Where a pass's seed comes from: its compact z, expanded here, or its z kept on the device. */
export type Rank1Source = 'compact' | 'cached';

/** Inputs per Concat: onnxruntime's WebGPU shaders bind a limited number of storage buffers. */
const CONCAT_FANIN = 6;

/**
 * The pass graph for one or two seeds over a layout's span, each expanded from its compact z or read from
 * its kept z; the last, when expanded, is also an output (kept for the step's next passes).
 */
export function buildRank1PassGraph(layout: CompactLayout, sources: readonly Rank1Source[]): Uint8Array {
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
  const outputs = [valueInfo(RANK1_PASS_NAMES.output, DataType.FLOAT, [layout.span])];
  for (let k = 0; k < seeds; k++) {
    let z: string = RANK1_PASS_NAMES.cachedZ(k);
    if (sources[k] === 'compact') {
      z = expand(k);
      if (k === seeds - 1) {
        nodes.push(node('Identity', [z], [RANK1_PASS_NAMES.zOutput], 'keep_z'));
        outputs.push(valueInfo(RANK1_PASS_NAMES.zOutput, DataType.FLOAT, [layout.span]));
      }
    }
    const step = fresh('step');
    nodes.push(node('Mul', [z, RANK1_PASS_NAMES.scale(k)], [step], step));
    const out = k === seeds - 1 ? RANK1_PASS_NAMES.output : fresh('w');
    nodes.push(node('Add', [w, step], [out], out));
    w = out;
  }
  const inputs = [valueInfo(RANK1_PASS_NAMES.weights, DataType.FLOAT, [layout.span])];
  sources.forEach((source, k) => {
    if (source === 'compact') inputs.push(valueInfo(RANK1_PASS_NAMES.compact(k), DataType.FLOAT, [layout.length]));
    else inputs.push(valueInfo(RANK1_PASS_NAMES.cachedZ(k), DataType.FLOAT, [layout.span]));
    inputs.push(valueInfo(RANK1_PASS_NAMES.scale(k), DataType.FLOAT, [1]));
  });
  return encodeGraph({
    name: `rank1_pass_${sources.join('_')}`,
    node: nodes,
    initializer: initializers,
    input: inputs,
    output: outputs,
  });
}
