// A rank-1 pass's z over the whole span, compactly, for a device to expand (trainer/device/rank1-pass-graph.ts):
// every matrix's factors and every other index's value, the shape's multipliers folded in exactly.
import { ZQ, zIndex } from './generator';
import { columnFactors, matrixBlocks, rowFactors } from './rank1';

/**
 * A pass's z over the whole span, compactly: for each block its factors (u then v), for every other run of
 * indices its values, each scaled by its tensor's shape multiplier (a power of two, so exactly; 0 for the
 * gaps of a shaped pass, which leaves them alone). A device expands it (u·vᵀ per block) and gets the
 * host's z·m bit for bit: (u·m)·v is the exact integer u·v times m.
 */
export type CompactSegment =
  | { readonly kind: 'block'; readonly offset: number; readonly rows: number; readonly cols: number; readonly at: number; readonly multiplier: number }
  | { readonly kind: 'values'; readonly offset: number; readonly length: number; readonly at: number; readonly multiplier: number };

export interface CompactLayout {
  readonly segments: readonly CompactSegment[];
  /** Values of the compact vector. */
  readonly length: number;
  /** Indices of the span it expands to. */
  readonly span: number;
}

/**
 * The layout for tensors in offset order with their multipliers (null: isotropic, the gaps perturbed like
 * any index; else the gaps get 0). Neighbouring value runs of one multiplier are merged.
 */
export function compactLayout(
  tensors: readonly { readonly offset: number; readonly size: number; readonly dims: readonly number[] }[],
  multipliers: ArrayLike<number> | null,
  span: number,
): CompactLayout {
  const segments: CompactSegment[] = [];
  let at = 0;
  const values = (offset: number, length: number, multiplier: number): void => {
    if (length <= 0) return;
    const last = segments.at(-1);
    if (last && last.kind === 'values' && last.multiplier === multiplier && last.offset + last.length === offset) {
      segments[segments.length - 1] = { ...last, length: last.length + length };
    } else {
      segments.push({ kind: 'values', offset, length, at, multiplier });
    }
    at += length;
  };
  const gap = multipliers === null ? 1 : 0;
  let end = 0;
  tensors.forEach((t, i) => {
    values(end, t.offset - end, gap);
    const m = multipliers === null ? 1 : multipliers[i];
    const [block] = matrixBlocks([t]);
    if (block) {
      segments.push({ kind: 'block', offset: t.offset, rows: block.rows, cols: block.cols, at, multiplier: m });
      at += block.rows + block.cols;
    } else {
      values(t.offset, t.size, m);
    }
    end = t.offset + t.size;
  });
  values(end, span - end, gap);
  return { segments, length: at, span };
}

/** The compact vector of one seed key under a layout (float32: integers times powers of two, exact). */
export function compactValues(layout: CompactLayout, key: number, out = new Float32Array(layout.length)): Float32Array {
  for (const s of layout.segments) {
    const m = s.multiplier;
    if (s.kind === 'block') {
      const block = { offset: s.offset, rows: s.rows, cols: s.cols };
      const u = rowFactors(key, block, 0, s.rows);
      const v = columnFactors(key, block);
      for (let r = 0; r < s.rows; r++) out[s.at + r] = u[r] * m;
      out.set(v, s.at + s.rows);
    } else {
      for (let t = 0; t < s.length; t++) out[s.at + t] = m === 0 ? 0 : ZQ[zIndex(key, s.offset + t)] * m;
    }
  }
  return out;
}
