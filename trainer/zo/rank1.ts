// The rank-1 generator (docs/zo-engine.md, "The rank-1 generator"): z of every matrix is an outer product
// u·vᵀ of two hashed vectors, so a seed costs R + C hashes per R×C matrix instead of R·C, and a round's
// change Σ_j C_j·u_j·v_jᵀ is a product of two thin matrices. Every other index (vectors, tensors with one
// row or one column, the gaps between tensors) keeps the iid generator's value.
//
// Values stay integers in units of 1/4096, like Zq: the factors come from a table at scale 64, so
// u_r·v_c = Zr[a]·Zr[b] is an exact integer below 2^17 (exact in float32 too) and z = u_r·v_c / 4096 has
// unit variance. Every pass and sum below is the iid path's arithmetic with that integer in place of Zq:
// the same roundings in the same places, so replicas stay bit-identical and the exact path stays exact.
import { checkedTable, ZQ, zIndex } from './generator';
import { tableScale } from './kernels';
import { Rank1Wasm, type Rank1SumsJob } from './rank1-wasm';

/** Which loops run the blocks: WebAssembly SIMD where the engine has it, else plain JS (same bits). */
export type Rank1Loops = Rank1Wasm | 'js';

let sharedWasm: Rank1Wasm | null | undefined;
/** The process's WebAssembly instance, or 'js' where SIMD is unavailable. */
export function defaultRank1Loops(): Rank1Loops {
  if (sharedWasm === undefined) sharedWasm = Rank1Wasm.create();
  return sharedWasm ?? 'js';
}

/** Fixed-point scale of the factor table: a factor is Zr / 64. */
export const ZR_SCALE = 64;

/** SHA-256 of the factor table as little-endian int16 (pinned like Zq's). */
export const ZR_SHA256 = '92d68b9756880f92a92678c719d9a06d989ef46ef568e16b7200315d1cb0a270';

/** Zr[k] = round(64 · Φ⁻¹((k + ½) / 65536)), mirrored (do not mutate). */
export const ZR: Int16Array = checkedTable(ZR_SCALE, ZR_SHA256);

/** A tensor perturbed as u·vᵀ: global offset, rows (the product of all dims but the last) and columns. */
export interface MatrixBlock {
  readonly offset: number;
  readonly rows: number;
  readonly cols: number;
}

/**
 * The tensors the rank-1 generator factors: at least two dims, at least two rows and two columns. Then
 * R + C ≤ R·C, so u's indices [offset, offset + R) and v's [offset + R, offset + R + C) lie inside the
 * tensor's own span: no two tensors, and no two factors, share a hashed index.
 */
export function matrixBlocks(tensors: readonly { readonly offset: number; readonly dims: readonly number[] }[]): MatrixBlock[] {
  const blocks: MatrixBlock[] = [];
  for (const { offset, dims } of tensors) {
    if (dims.length < 2) continue;
    const cols = dims[dims.length - 1];
    const rows = dims.slice(0, -1).reduce((a, b) => a * b, 1);
    if (rows >= 2 && cols >= 2) blocks.push({ offset, rows, cols });
  }
  return blocks.sort((a, b) => a.offset - b.offset);
}

/** u's integers for rows [from, to) of a block under a seed key (Zr values, scale 64). */
export function rowFactors<T extends Float32Array | Float64Array = Float64Array>(key: number, block: MatrixBlock, from: number, to: number, out?: T): T {
  out ??= new Float64Array(to - from) as T;
  for (let r = from; r < to; r++) out[r - from] = ZR[zIndex(key, block.offset + r)];
  return out;
}

/** v's integers for every column of a block under a seed key. */
export function columnFactors<T extends Float32Array | Float64Array = Float64Array>(key: number, block: MatrixBlock, out?: T): T {
  out ??= new Float64Array(block.cols) as T;
  const base = block.offset + block.rows;
  for (let c = 0; c < block.cols; c++) out[c] = ZR[zIndex(key, base + c)];
  return out;
}

/** The block holding global index i, or null (binary search over blocks sorted by offset). */
export function blockAt(blocks: readonly MatrixBlock[], i: number): MatrixBlock | null {
  let lo = 0;
  let hi = blocks.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const b = blocks[mid];
    if (i < b.offset) hi = mid - 1;
    else if (i >= b.offset + b.rows * b.cols) lo = mid + 1;
    else return b;
  }
  return null;
}

/** Scalar reference: the integer value (z·4096) at global index i under a seed key. Slow; for tests. */
export function rank1Value(blocks: readonly MatrixBlock[], key: number, i: number): number {
  const block = blockAt(blocks, i);
  if (block === null) return ZQ[zIndex(key, i)];
  const r = Math.floor((i - block.offset) / block.cols);
  const c = i - block.offset - r * block.cols;
  return ZR[zIndex(key, block.offset + r)] * ZR[zIndex(key, block.offset + block.rows + c)];
}

/** A pass's seeds: keys and unscaled steps (one seed, or two applied in order). */
export interface Rank1Pass {
  readonly keys: readonly number[];
  readonly steps: readonly number[];
}

const fround = Math.fround;

/**
 * Runs a pass over w, which holds global indices [base, base + w.length): every element
 * w = fl32(w + fl32(s'_1·z_1)) (then + fl32(s'_2·z_2)), s' = fl32(s·m/4096) with m the element's tensor
 * multiplier. `parts` are the ranges to perturb with their multipliers (a shaped pass skips the gaps).
 */
export function rank1PassRange(
  w: Float32Array,
  base: number,
  blocks: readonly MatrixBlock[],
  pass: Rank1Pass,
  from: number,
  to: number,
  multiplier: number,
  loops: Rank1Loops = defaultRank1Loops(),
): void {
  const scales = pass.steps.map((s) => tableScale(s * multiplier));
  walkParts(
    blocks,
    from,
    to,
    (a, b) => iidRange(w, base, pass.keys, scales, a, b),
    (block, a, b) => (loops === 'js' ? blockRange(w, base, block, pass.keys, scales, a, b) : wasmBlockRange(loops, w, base, block, pass.keys, scales, a, b)),
  );
}

/** Splits [from, to) into the parts outside every block and the parts inside each block, in index order. */
function walkParts(
  blocks: readonly MatrixBlock[],
  from: number,
  to: number,
  outside: (from: number, to: number) => void,
  inBlock: (block: MatrixBlock, from: number, to: number) => void,
): void {
  for (let i = from; i < to;) {
    const block = nextBlock(blocks, i);
    if (block === null || i < block.offset) {
      const end = Math.min(to, block?.offset ?? to);
      outside(i, end);
      i = end;
    } else {
      const end = Math.min(to, block.offset + block.rows * block.cols);
      inBlock(block, i, end);
      i = end;
    }
  }
}

/** The first block that ends after index i (blocks sorted by offset), or null. */
function nextBlock(blocks: readonly MatrixBlock[], i: number): MatrixBlock | null {
  let lo = 0;
  let hi = blocks.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (blocks[mid].offset + blocks[mid].rows * blocks[mid].cols <= i) lo = mid + 1;
    else hi = mid;
  }
  return lo < blocks.length ? blocks[lo] : null;
}

/** Indices outside every block: the iid generator's Zq, element by element (vectors and gaps: few). */
function iidRange(w: Float32Array, base: number, keys: readonly number[], scales: readonly number[], from: number, to: number): void {
  for (let i = from; i < to; i++) {
    let x = w[i - base];
    for (let k = 0; k < keys.length; k++) x = fround(x + fround(scales[k] * ZQ[zIndex(keys[k], i)]));
    w[i - base] = x;
  }
}

/** Elements [from, to) of one block, row by row. s'·u_r·v_c is exact in float64 (≤ 24 + 9 + 9 bits). */
function blockRange(w: Float32Array, base: number, block: MatrixBlock, keys: readonly number[], scales: readonly number[], from: number, to: number): void {
  const { offset, cols } = block;
  const r0 = Math.floor((from - offset) / cols);
  const r1 = Math.floor((to - 1 - offset) / cols) + 1;
  const u = keys.map((key) => rowFactors(key, block, r0, r1));
  const v = keys.map((key) => columnFactors(key, block));
  const vA = v[0];
  const vB = v.length > 1 ? v[1] : vA;
  for (let r = r0; r < r1; r++) {
    const rowStart = offset + r * cols;
    const c0 = Math.max(from, rowStart) - rowStart;
    const c1 = Math.min(to, rowStart + cols) - rowStart;
    const at = rowStart - base;
    const a = scales[0] * u[0][r - r0];
    if (keys.length === 1) {
      for (let c = c0; c < c1; c++) w[at + c] = fround(w[at + c] + fround(a * vA[c]));
    } else {
      const b = scales[1] * u[1][r - r0];
      for (let c = c0; c < c1; c++) w[at + c] = fround(fround(w[at + c] + fround(a * vA[c])) + fround(b * vB[c]));
    }
  }
}

/** Rows [r0, r1) of a block holding [from, to), and the first row's first and the last row's end column. */
function rowSpan(block: MatrixBlock, from: number, to: number): { r0: number; r1: number; first: number; lastEnd: number } {
  const r0 = Math.floor((from - block.offset) / block.cols);
  const r1 = Math.floor((to - 1 - block.offset) / block.cols) + 1;
  return { r0, r1, first: from - block.offset - r0 * block.cols, lastEnd: to - block.offset - (r1 - 1) * block.cols };
}

function wasmBlockRange(
  wasm: Rank1Wasm,
  w: Float32Array,
  base: number,
  block: MatrixBlock,
  keys: readonly number[],
  scales: readonly number[],
  from: number,
  to: number,
): void {
  const { r0, r1, first, lastEnd } = rowSpan(block, from, to);
  const u = keys.map((key) => rowFactors(key, block, r0, r1, new Float32Array(r1 - r0)));
  const v = keys.map((key) => columnFactors(key, block, new Float32Array(block.cols)));
  wasm.passBlock(w, from - base, block.cols, r0, r1, first, lastEnd, u, v, scales);
}

/** Columns per tile of an accumulation: the tile of every seed's v stays in cache across the rows. */
const TILE_COLUMNS = 512;
/** Seeds per group of an accumulation (bounds the factors held: group × (rows + columns) floats). */
const SEED_GROUP = 256;

/**
 * S += Σ_j coeffs[j]·value_j over S, which holds global indices [base, base + S.length). Exact: the caller
 * guarantees max|value| · Σ|C_j| < 2^53, so every product and partial sum is an integer below 2^53 and the
 * order of additions cannot change a bit. Inside a block, row r gains Σ_j (C_j·u_j[r])·v_j: a product of
 * two thin matrices, done here tile by tile.
 */
export function rank1Accumulate(
  S: Float64Array,
  base: number,
  blocks: readonly MatrixBlock[],
  keys: Uint32Array,
  coeffs: Float64Array,
  loops: Rank1Loops = defaultRank1Loops(),
): void {
  walkParts(
    blocks,
    base,
    base + S.length,
    (from, to) => {
      for (let t = from; t < to; t++) {
        let sum = 0;
        for (let j = 0; j < keys.length; j++) sum += coeffs[j] * ZQ[zIndex(keys[j], t)];
        S[t - base] += sum;
      }
    },
    (block, from, to) => {
      if (loops !== 'js') {
        for (const job of rank1SumsJobs(block, keys, coeffs, from, to, from - base)) loops.accumulateBlock(job, S);
        return;
      }
      for (let j0 = 0; j0 < keys.length; j0 += SEED_GROUP) {
        accumulateBlock(S, base, block, keys.subarray(j0, j0 + SEED_GROUP), coeffs.subarray(j0, j0 + SEED_GROUP), from, to);
      }
    },
  );
}

/** The job of a block's part [from, to) for a group of seeds: its factors, hashed here (few). */
export function rank1SumsJob(at: number, block: MatrixBlock, keys: Uint32Array, coeffs: Float64Array, from: number, to: number): Rank1SumsJob {
  const { r0, r1, first, lastEnd } = rowSpan(block, from, to);
  const rows = r1 - r0;
  const m = keys.length;
  const cu = new Float64Array(m * rows);
  const v = new Float64Array(m * block.cols);
  for (let j = 0; j < m; j++) {
    const u = rowFactors(keys[j], block, r0, r1, cu.subarray(j * rows, (j + 1) * rows));
    for (let r = 0; r < rows; r++) u[r] *= coeffs[j];
    columnFactors(keys[j], block, v.subarray(j * block.cols, (j + 1) * block.cols));
  }
  return { at, cols: block.cols, r0, r1, firstColumn: first, lastColumnEnd: lastEnd, m, cu, v };
}

/** The jobs of a block's part [from, to), one per group of seeds; `at`: where in S the part starts (0: an S of its own). */
export function rank1SumsJobs(block: MatrixBlock, keys: Uint32Array, coeffs: Float64Array, from: number, to: number, at = 0): Rank1SumsJob[] {
  const jobs: Rank1SumsJob[] = [];
  for (let j0 = 0; j0 < keys.length; j0 += SEED_GROUP) {
    jobs.push(rank1SumsJob(at, block, keys.subarray(j0, j0 + SEED_GROUP), coeffs.subarray(j0, j0 + SEED_GROUP), from, to));
  }
  return jobs;
}

function accumulateBlock(S: Float64Array, base: number, block: MatrixBlock, keys: Uint32Array, coeffs: Float64Array, from: number, to: number): void {
  const { offset, cols } = block;
  const m = keys.length;
  const r0 = Math.floor((from - offset) / cols);
  const r1 = Math.floor((to - 1 - offset) / cols) + 1;
  const rows = r1 - r0;
  // cu[r·m + j] = C_j·u_j[r] and v[j·cols + c], both exact integers in float64.
  const cu = new Float64Array(rows * m);
  const v = new Float64Array(m * cols);
  const u = new Float64Array(rows);
  for (let j = 0; j < m; j++) {
    rowFactors(keys[j], block, r0, r1, u);
    for (let r = 0; r < rows; r++) cu[r * m + j] = coeffs[j] * u[r];
    columnFactors(keys[j], block, v.subarray(j * cols, (j + 1) * cols));
  }
  for (let c0 = 0; c0 < cols; c0 += TILE_COLUMNS) {
    const c1 = Math.min(cols, c0 + TILE_COLUMNS);
    for (let r = r0; r < r1; r++) {
      const rowStart = offset + r * cols;
      const lo = Math.max(c0, Math.max(from, rowStart) - rowStart);
      const hi = Math.min(c1, Math.min(to, rowStart + cols) - rowStart);
      if (lo >= hi) continue;
      const at = rowStart - base;
      const row = (r - r0) * m;
      for (let j = 0; j < m; j++) {
        const a = cu[row + j];
        if (a === 0) continue;
        const vj = j * cols;
        for (let c = lo; c < hi; c++) S[at + c] += a * v[vj + c];
      }
    }
  }
}
