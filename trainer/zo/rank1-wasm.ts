// The rank-1 generator's hot loops in WebAssembly SIMD (wasm/rank1.wat): a block's rows perturbed from its
// factors, and the accumulator's product of two thin matrices. The host hashes the factors (rank1.ts) and
// moves weights and sums through this module's memory, which grows as the largest call needs.
import { WASM_BASE64 } from './wasm/rank1.generated';

interface Rank1Exports {
  readonly memory: WebAssembly.Memory;
  passRows(w: number, u: number, v: number, rows: number, cols: number, s: number): void;
  passRows2(w: number, uA: number, vA: number, a: number, uB: number, vB: number, b: number, rows: number, cols: number): void;
  accumulate(S: number, cu: number, v: number, rows: number, cols: number, m: number): void;
}

let moduleCache: WebAssembly.Module | null | undefined;

function compiledModule(): WebAssembly.Module | null {
  if (moduleCache === undefined) {
    const bytes = Buffer.from(WASM_BASE64, 'base64');
    moduleCache = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  return moduleCache;
}

/** Elements of weights moved per call: the block's rows are taken in runs of about this many. */
const PASS_CHUNK = 1 << 16;
/** Accumulator tiles: rows × columns of S kept while a group of seeds passes (multiples of 4). */
const TILE_ROWS = 64;
const TILE_COLUMNS = 64;

const align = (bytes: number): number => Math.ceil(bytes / 64) * 64;

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
  accumulateBlock(
    S: Float64Array,
    at: number,
    cols: number,
    r0: number,
    r1: number,
    firstColumn: number,
    lastColumnEnd: number,
    cu: readonly Float64Array[],
    v: readonly Float64Array[],
  ): void {
    const m = cu.length;
    const rows = r1 - r0;
    const rowsPadded = Math.ceil(rows / 4) * 4;
    const cuBytes = align(rowsPadded * m * 8);
    const vBytes = align(m * TILE_COLUMNS * 8);
    const sBytes = align(TILE_ROWS * TILE_COLUMNS * 8);
    const buffer = this.reserve(cuBytes + vBytes + sBytes);
    const cuArea = new Float64Array(buffer, 0, rowsPadded * m);
    cuArea.fill(0);
    for (let j = 0; j < m; j++) for (let r = 0; r < rows; r++) cuArea[r * m + j] = cu[j][r];
    const vArea = new Float64Array(buffer, cuBytes, m * TILE_COLUMNS);
    const sArea = new Float64Array(buffer, cuBytes + vBytes, TILE_ROWS * TILE_COLUMNS);
    for (let c0 = 0; c0 < cols; c0 += TILE_COLUMNS) {
      const width = Math.min(TILE_COLUMNS, cols - c0);
      const widthPadded = Math.ceil(width / 4) * 4;
      vArea.fill(0);
      for (let j = 0; j < m; j++) vArea.set(v[j].subarray(c0, c0 + width), j * widthPadded);
      for (let t0 = 0; t0 < rows; t0 += TILE_ROWS) {
        const height = Math.min(TILE_ROWS, rows - t0);
        const heightPadded = Math.ceil(height / 4) * 4;
        sArea.fill(0, 0, heightPadded * widthPadded);
        this.ex.accumulate(cuBytes + vBytes, t0 * m * 8, cuBytes, heightPadded, widthPadded, m);
        // Only the tile's elements inside the range: the first and last rows may be partial.
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
}
