// The interface both kernel implementations (pure JS and WebAssembly SIMD) satisfy bit for bit.
// Every operation works on one tensor's elements, which occupy global parameter indices
// offset .. offset + length − 1 (docs/zo-engine.md); offset must be even so pairs never split.

export type KernelName = 'js' | 'wasm-simd';

export interface PerturbationKernels {
  readonly name: KernelName;
  /** w += s·z(key): w[t] = fl32(w[t] + fl32(fl32(s/4096)·Zq)). */
  perturb(w: Float32Array, offset: number, key: number, s: number): void;
  /** Two seeds fused in a fixed order: w = fl32(fl32(w + fl32(a'·Zq_A)) + fl32(b'·Zq_B)). */
  perturb2(w: Float32Array, offset: number, keyA: number, a: number, keyB: number, b: number): void;
  /** perturb(w, offset, key, s), also writing the seed's table values Zq to zq (zq.length = w.length). */
  perturbStore(w: Float32Array, zq: Int16Array, offset: number, key: number, s: number): void;
  /** w += s·z from the stored Zq: w[t] = fl32(w[t] + fl32(s'·zq[t])); no hashing. */
  perturbStored(w: Float32Array, zq: Int16Array, s: number): void;
  /**
   * perturb2 whose first seed is the stored one: w = fl32(fl32(w + fl32(a'·zq)) + fl32(b'·Zq_B)), then
   * zq = Zq_B. Equals perturbStored(a) then perturbStore(keyB, b) bit for bit, in one pass.
   */
  perturb2Stored(w: Float32Array, zq: Int16Array, offset: number, a: number, keyB: number, b: number): void;
  /** S += Σ_j coeffs[j]·Zq_j, exact: coefficients are integers and the caller guarantees the 2^53 bound. */
  accumulate(S: Float64Array, offset: number, keys: Uint32Array, coeffs: Float64Array): void;
  /** w = fl32(w0 + scale·S), computed in float64 with one rounding to float32. */
  materialize(w: Float32Array, w0: Float32Array, S: Float64Array, scale: number): void;
}

/** Views inside a kernel instance's memory: the working weights and the stored-z scratch. */
export interface ResidentViews {
  readonly weights: Float32Array;
  /** Zq of one seed per parameter (2 bytes each); null when not requested. */
  readonly zStore: Int16Array | null;
}

/** Kernels that own a WebAssembly memory can host the working weights so perturbation is zero-copy. */
export interface ResidentMemory {
  /**
   * Grows the memory once and returns a Float32Array view of `length` floats inside it (64-byte aligned),
   * or null when it cannot grow that far. Views stay valid: the memory is never grown again afterwards.
   */
  allocateResident(length: number): Float32Array | null;
  /**
   * The same single growth for `weights` floats followed by `zStore` int16 values (each 64-byte aligned;
   * zStore may be 0). The WASM stored-z kernels need their zq inside this memory.
   */
  allocateResidentViews(weights: number, zStore: number): ResidentViews | null;
}

export function checkStore(w: Float32Array, zq: Int16Array): void {
  if (zq.length !== w.length) throw new RangeError(`z store holds ${zq.length} values for ${w.length} weights`);
}

export function checkOffset(offset: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset % 2 !== 0 || offset > 0xffffffff) {
    throw new RangeError(`kernel offset must be an even global parameter index below 2^32, got ${offset}`);
  }
}

/** fl32(s / 4096): the per-pass float multiplier applied to the integer table entries. */
export function tableScale(s: number): number {
  return Math.fround(s / 4096);
}
