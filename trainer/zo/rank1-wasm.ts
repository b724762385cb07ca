// The rank-1 generator's hot loops in WebAssembly SIMD (wasm/rank1.wat): a block's rows perturbed from its
// factors, and the accumulator's product of two thin matrices. The host hashes the factors (rank1.ts) and
// moves weights and sums through this module's memory, which grows as the largest call needs.
import { simdModule } from './wasm/load';
import { WASM_BASE64 } from './wasm/rank1.generated';

interface Rank1Exports {
  readonly memory: WebAssembly.Memory;
  passRows(w: number, u: number, v: number, rows: number, cols: number, s: number): void;
  passRows2(w: number, uA: number, vA: number, a: number, uB: number, vB: number, b: number, rows: number, cols: number): void;
  accumulate(S: number, cu: number, v: number, rows: number, cols: number, m: number): void;
}

const compiledModule = simdModule(WASM_BASE64);

/** Elements of weights moved per call: the block's rows are taken in runs of about this many. */
const PASS_CHUNK = 1 << 16;

const align = (bytes: number): number => Math.ceil(bytes / 64) * 64;

/** The compiled module, for a worker thread to instantiate (null without WebAssembly SIMD). */
export function rank1Module(): WebAssembly.Module | null {
  return compiledModule();
}

export class Rank1Wasm {
  private readonly ex: Rank1Exports;

  private constructor(module: WebAssembly.Module) {
    this.ex = new WebAssembly.Instance(module, {}).exports as unknown as Rank1Exports;
  }

  /** An instance, or null where the engine has no WebAssembly SIMD (the JS loops take over). */
  static create(): Rank1Wasm | null {
    const module = compiledModule();
    return module === null ? null : new Rank1Wasm(module);
  }

  /** Ensures the memory holds `bytes` and returns its buffer (valid until the next call). */
  private reserve(bytes: number): ArrayBuffer {
    const memory = this.ex.memory;
    const missing = bytes - memory.buffer.byteLength;
    if (missing > 0) memory.grow(Math.ceil(missing / 65_536));
    return memory.buffer;
  }

  /**
   * Rows [r0, r1) of a block whose elements [c0 of row r0, c1 of row r1 − 1) lie in w from `at` on: the
   * elements of the first and last rows outside [from, to) are not touched. u[k][r − r0], v[k][c]: factors
   * as float32 integers; scales fl32(s·m/4096).
   */
  passBlock(
    w: Float32Array,
    at: number,
    cols: number,
    r0: number,
    r1: number,
    firstColumn: number,
    lastColumnEnd: number,
    u: readonly Float32Array[],
    v: readonly Float32Array[],
    scales: readonly number[],
  ): void {
    const two = u.length > 1;
    const runRows = Math.max(1, Math.floor(PASS_CHUNK / cols));
    const vBytes = align(cols * 4);
    const uBytes = align(runRows * 4);
    const wBytes = align(Math.max(runRows * cols, Math.min(cols, PASS_CHUNK)) * 4);
    const seeds = two ? 2 : 1;
    const buffer = this.reserve(seeds * (vBytes + uBytes) + wBytes);
    const vAt = [0, vBytes];
    const uAt = [seeds * vBytes, seeds * vBytes + uBytes];
    const wAt = seeds * (vBytes + uBytes);
    for (let k = 0; k < seeds; k++) new Float32Array(buffer, vAt[k], cols).set(v[k]);
    const run = (r: number, rows: number, c0: number, c1: number, from: number): void => {
      const n = rows * (c1 - c0);
      for (let k = 0; k < seeds; k++) new Float32Array(buffer, uAt[k], rows).set(u[k].subarray(r - r0, r - r0 + rows));
      const scratch = new Float32Array(buffer, wAt, n);
      scratch.set(w.subarray(from, from + n));
      if (two) this.ex.passRows2(wAt, uAt[0], vAt[0] + c0 * 4, scales[0], uAt[1], vAt[1] + c0 * 4, scales[1], rows, c1 - c0);
      else this.ex.passRows(wAt, uAt[0], vAt[0] + c0 * 4, rows, c1 - c0, scales[0]);
      w.set(scratch, from);
    };
    // One row piece by piece (a partial row, or a row wider than a chunk), or runs of whole rows.
    const rowPieces = (r: number, c0: number, c1: number, from: number): void => {
      for (let c = c0; c < c1; c += PASS_CHUNK) run(r, 1, c, Math.min(c1, c + PASS_CHUNK), from + (c - c0));
    };
    let pos = at;
    let r = r0;
    if (r1 - r0 === 1) return rowPieces(r0, firstColumn, lastColumnEnd, pos);
    if (firstColumn > 0) {
      rowPieces(r, firstColumn, cols, pos);
      pos += cols - firstColumn;
      r++;
    }
    const fullEnd = lastColumnEnd < cols ? r1 - 1 : r1;
    while (r < fullEnd) {
      if (cols > PASS_CHUNK) {
        rowPieces(r, 0, cols, pos);
        pos += cols;
        r++;
        continue;
      }
      const rows = Math.min(runRows, fullEnd - r);
      run(r, rows, 0, cols, pos);
      pos += rows * cols;
      r += rows;
    }
    if (fullEnd < r1) rowPieces(r1 - 1, 0, lastColumnEnd, pos);
  }

  /**
   * S[at + (r − r0)·cols + c − firstColumn] += Σ_j cu[j][r − r0]·v[j][c] over the block's elements from
   * (r0, firstColumn) to (r1 − 1, lastColumnEnd), where cu[j] = C_j·u_j (exact integers in float64).
   */
  accumulateBlock(job: Rank1SumsJob, S: Float64Array): void {
    accumulateTiles(this.ex, job, S);
  }
}

/**
 * A block's part of S and the factors it gains: cu (m rows of C_j·u_j over rows r0..r1−1) and v (m rows of
 * v_j over every column), flattened seed by seed.
 */
export interface Rank1SumsJob {
  /** Index in S of the part's first element. */
  readonly at: number;
  readonly cols: number;
  readonly r0: number;
  readonly r1: number;
  readonly firstColumn: number;
  readonly lastColumnEnd: number;
  readonly m: number;
  /** cu[j·(r1 − r0) + (r − r0)]. */
  readonly cu: Float64Array;
  /** v[j·cols + c]. */
  readonly v: Float64Array;
}

/**
 * The accumulator's tile loop over the module's exports. Self-contained (no imports, no module constants)
 * because the pass worker runs its source text: both threads compute with this very function.
 */
export function accumulateTiles(
  ex: { readonly memory: WebAssembly.Memory; accumulate(S: number, cu: number, v: number, rows: number, cols: number, m: number): void },
  job: Rank1SumsJob,
  S: Float64Array,
): void {
  const tileRows = 64;
  const tileColumns = 64;
  const { at, cols, r0, r1, firstColumn, lastColumnEnd, m } = job;
  const rows = r1 - r0;
  const rowsPadded = Math.ceil(rows / 4) * 4;
  // Byte sizes rounded up to 64 (no helper function: the worker's copy of this source has no others).
  const cuBytes = Math.ceil((rowsPadded * m * 8) / 64) * 64;
  const vBytes = Math.ceil((m * tileColumns * 8) / 64) * 64;
  const sBytes = tileRows * tileColumns * 8;
  const missing = cuBytes + vBytes + sBytes - ex.memory.buffer.byteLength;
  if (missing > 0) ex.memory.grow(Math.ceil(missing / 65536));
  const buffer = ex.memory.buffer;
  const cuArea = new Float64Array(buffer, 0, rowsPadded * m);
  cuArea.fill(0);
  for (let j = 0; j < m; j++) for (let r = 0; r < rows; r++) cuArea[r * m + j] = job.cu[j * rows + r];
  const vArea = new Float64Array(buffer, cuBytes, m * tileColumns);
  const sArea = new Float64Array(buffer, cuBytes + vBytes, tileRows * tileColumns);
  for (let c0 = 0; c0 < cols; c0 += tileColumns) {
    const width = Math.min(tileColumns, cols - c0);
    const widthPadded = Math.ceil(width / 4) * 4;
    vArea.fill(0);
    for (let j = 0; j < m; j++) vArea.set(job.v.subarray(j * cols + c0, j * cols + c0 + width), j * widthPadded);
    for (let t0 = 0; t0 < rows; t0 += tileRows) {
      const height = Math.min(tileRows, rows - t0);
      const heightPadded = Math.ceil(height / 4) * 4;
      sArea.fill(0, 0, heightPadded * widthPadded);
      ex.accumulate(cuBytes + vBytes, t0 * m * 8, cuBytes, heightPadded, widthPadded, m);
      // Only the tile's elements inside the part: its first and last rows may be partial.
      for (let t = 0; t < height; t++) {
        const r = t0 + t;
        const lo = Math.max(c0, r === 0 ? firstColumn : 0);
        const hi = Math.min(c0 + width, r === rows - 1 ? lastColumnEnd : cols);
        const base = at + r * cols - firstColumn;
        for (let c = lo; c < hi; c++) S[base + c] += sArea[t * widthPadded + (c - c0)];
      }
    }
  }
}
