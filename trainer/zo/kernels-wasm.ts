// WebAssembly SIMD kernels. Arrays inside the instance's memory (resident weights) are processed in
// place; arrays outside it are streamed through a scratch area in cache-sized chunks.
import { checkOffset, checkStore, tableScale, type PerturbationKernels, type ResidentMemory, type ResidentViews } from './kernels';
import { instantiateKernels, LAYOUT, type KernelExports } from './wasm/load';

const PAGE = 65_536;
/** Largest memory a 32-bit WebAssembly instance can address. */
const MAX_PAGES = 65_536;

const align64 = (bytes: number): number => Math.ceil(bytes / 64) * 64;

export class WasmKernels implements PerturbationKernels, ResidentMemory {
  readonly name = 'wasm-simd' as const;
  private readonly wasm: KernelExports;
  private residentTaken = false;

  constructor() {
    this.wasm = instantiateKernels();
  }

  /** Raw exports, for the benchmark's memory-floor pass. */
  get exports(): KernelExports {
    return this.wasm;
  }

  allocateResident(length: number): Float32Array | null {
    return this.allocateResidentViews(length, 0)?.weights ?? null;
  }

  allocateResidentViews(weights: number, zStore: number): ResidentViews | null {
    if (this.residentTaken) throw new Error('resident weights were already allocated in this kernel instance');
    const weightBytes = align64(weights * 4);
    const pages = Math.ceil((weightBytes + align64(zStore * 2)) / PAGE);
    const current = this.wasm.memory.buffer.byteLength / PAGE;
    if (current + pages > MAX_PAGES) return null;
    try {
      this.wasm.memory.grow(pages);
    } catch {
      return null; // the engine or the machine refused the allocation: caller keeps weights outside
    }
    this.residentTaken = true;
    const buffer = this.wasm.memory.buffer;
    return {
      weights: new Float32Array(buffer, LAYOUT.residentBase, weights),
      zStore: zStore > 0 ? new Int16Array(buffer, LAYOUT.residentBase + weightBytes, zStore) : null,
    };
  }

  /** True when `a` is a view of this instance's memory, so kernels can address it directly. */
  private inside(a: Float32Array | Float64Array | Int16Array): boolean {
    return a.buffer === this.wasm.memory.buffer;
  }

  private scratchF32(at: number, length: number): Float32Array {
    return new Float32Array(this.wasm.memory.buffer, at, length);
  }

  private scratchF64(at: number, length: number): Float64Array {
    return new Float64Array(this.wasm.memory.buffer, at, length);
  }

  perturb(w: Float32Array, offset: number, key: number, s: number): void {
    checkOffset(offset);
    const sp = tableScale(s);
    if (this.inside(w)) {
      this.wasm.perturb(w.byteOffset, w.length, offset, key, sp);
      return;
    }
    this.throughScratch(w, (ptr, n, start) => this.wasm.perturb(ptr, n, offset + start, key, sp));
  }

  perturb2(w: Float32Array, offset: number, keyA: number, a: number, keyB: number, b: number): void {
    checkOffset(offset);
    const ap = tableScale(a);
    const bp = tableScale(b);
    if (this.inside(w)) {
      this.wasm.perturb2(w.byteOffset, w.length, offset, keyA, ap, keyB, bp);
      return;
    }
    this.throughScratch(w, (ptr, n, start) => this.wasm.perturb2(ptr, n, offset + start, keyA, ap, keyB, bp));
  }

  perturbStore(w: Float32Array, zq: Int16Array, offset: number, key: number, s: number): void {
    checkOffset(offset);
    const sp = tableScale(s);
    this.withStore(w, zq, (ptr, zp, n, start) => this.wasm.perturbStore(ptr, zp, n, offset + start, key, sp));
  }

  perturbStored(w: Float32Array, zq: Int16Array, s: number): void {
    const sp = tableScale(s);
    this.withStore(w, zq, (ptr, zp, n) => this.wasm.perturbStored(ptr, zp, n, sp));
  }

  perturb2Stored(w: Float32Array, zq: Int16Array, offset: number, a: number, keyB: number, b: number): void {
    checkOffset(offset);
    const ap = tableScale(a);
    const bp = tableScale(b);
    this.withStore(w, zq, (ptr, zp, n, start) => this.wasm.perturb2Stored(ptr, zp, n, offset + start, ap, keyB, bp));
  }

  /** Stored-z passes address zq in this memory; w is used in place or streamed through the scratch chunk. */
  private withStore(w: Float32Array, zq: Int16Array, run: (ptr: number, zp: number, n: number, start: number) => void): void {
    checkStore(w, zq);
    if (!this.inside(zq)) throw new Error("the z store must lie inside this kernel instance's memory");
    if (this.inside(w)) run(w.byteOffset, zq.byteOffset, w.length, 0);
    else this.throughScratch(w, (ptr, n, start) => run(ptr, zq.byteOffset + start * 2, n, start));
  }

  /** Copies w through the scratch chunk; chunk starts are multiples of 8, so pairs stay whole. */
  private throughScratch(w: Float32Array, run: (ptr: number, n: number, start: number) => void): void {
    const scratch = this.scratchF32(LAYOUT.chunkW, LAYOUT.chunk);
    for (let start = 0; start < w.length; start += LAYOUT.chunk) {
      const part = w.subarray(start, Math.min(w.length, start + LAYOUT.chunk));
      scratch.set(part);
      run(LAYOUT.chunkW, part.length, start);
      part.set(scratch.subarray(0, part.length));
    }
  }

  accumulate(S: Float64Array, offset: number, keys: Uint32Array, coeffs: Float64Array): void {
    checkOffset(offset);
    if (keys.length !== coeffs.length) throw new RangeError('accumulate: keys and coeffs differ in length');
    const keyArea = new Uint32Array(this.wasm.memory.buffer, LAYOUT.keys, LAYOUT.maxSeeds);
    const coeffArea = this.scratchF64(LAYOUT.coeffs, LAYOUT.maxSeeds);
    const chunk = this.scratchF64(LAYOUT.chunkS, LAYOUT.chunk);
    for (let j0 = 0; j0 < keys.length; j0 += LAYOUT.maxSeeds) {
      const m = Math.min(LAYOUT.maxSeeds, keys.length - j0);
      keyArea.set(keys.subarray(j0, j0 + m));
      coeffArea.set(coeffs.subarray(j0, j0 + m));
      for (let start = 0; start < S.length; start += LAYOUT.chunk) {
        const part = S.subarray(start, Math.min(S.length, start + LAYOUT.chunk));
        chunk.set(part);
        this.wasm.accumulate(LAYOUT.chunkS, part.length, offset + start, LAYOUT.keys, LAYOUT.coeffs, m);
        part.set(chunk.subarray(0, part.length));
      }
    }
  }

  materialize(w: Float32Array, w0: Float32Array, S: Float64Array, scale: number): void {
    const n = w.length;
    if (w0.length !== n || S.length !== n) throw new RangeError('materialize: w, w0 and S differ in length');
    const base = this.scratchF32(LAYOUT.chunkW0, LAYOUT.chunk);
    const sums = this.scratchF64(LAYOUT.chunkS, LAYOUT.chunk);
    const out = this.scratchF32(LAYOUT.chunkW, LAYOUT.chunk);
    const resident = this.inside(w);
    for (let start = 0; start < n; start += LAYOUT.chunk) {
      const end = Math.min(n, start + LAYOUT.chunk);
      const len = end - start;
      base.set(w0.subarray(start, end));
      sums.set(S.subarray(start, end));
      if (resident) {
        this.wasm.materialize(w.byteOffset + start * 4, LAYOUT.chunkW0, LAYOUT.chunkS, len, scale);
      } else {
        this.wasm.materialize(LAYOUT.chunkW, LAYOUT.chunkW0, LAYOUT.chunkS, len, scale);
        w.set(out.subarray(0, len), start);
      }
    }
  }
}
