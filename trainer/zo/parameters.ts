// The trainable parameters of a model as the ZO engine sees them: float32 working weights laid out by
// global index (docs/zo-engine.md), the base w0 and the exact accumulator S, and whole-model kernels.
import { createHash } from 'node:crypto';
import { assertWithinExactBound, sumAbs } from './coefficients';
import { seedKey } from './generator';
import type { KernelName, PerturbationKernels, ResidentMemory, ResidentViews } from './kernels';
import { createKernels, type KernelChoice } from './kernels-select';
import { LocalSpanPasses } from './span-passes';

export interface TensorInit {
  readonly name: string;
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

export interface ParameterTensor {
  readonly name: string;
  readonly dims: readonly number[];
  /** Global index of the first element (a multiple of 8). */
  readonly offset: number;
  readonly size: number;
  /** Working weights: the array the inference session is fed, mutated in place by the kernels. */
  readonly data: Float32Array;
}

export interface ParameterSetOptions {
  /** 'auto' (default): WebAssembly SIMD where it validates, else JS. */
  readonly kernel?: KernelChoice;
  /** Keep the working weights inside the WASM memory when they fit (default true). */
  readonly resident?: boolean;
  /**
   * Keep the current seed's table values (int16, 2 bytes per parameter) so a ZO step generates z once and
   * its other passes read it back. Default: on for WASM kernels, where it must fit next to the resident
   * weights (else every pass hashes); off for JS, where reading the store costs as much as hashing. The
   * results are the same bits either way.
   */
  readonly zStore?: boolean;
}

/** 2^-28: 2^-16 for the coefficient units times 2^-12 for the table. */
const S_UNIT = 2 ** -28;

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

export class ParameterSet {
  /** Tensors in offset (name) order. */
  readonly tensors: readonly ParameterTensor[];
  readonly weights: ReadonlyMap<string, Float32Array>;
  readonly dims: ReadonlyMap<string, readonly number[]>;
  /** d: the number of real parameters. */
  readonly parameterCount: number;
  /** Global indices in use, gaps included: the length of w0 and S. */
  readonly indexSpan: number;
  readonly kernel: KernelName;
  /** True when the working weights live inside the WASM memory (zero-copy perturbation). */
  readonly resident: boolean;

  private readonly kernels: PerturbationKernels;
  /** All working weights, contiguous by global index; the tensors' arrays are views of it. */
  private readonly span: Float32Array;
  private readonly useZStore: boolean;
  /** The WASM store, allocated with the resident weights (a later growth would move them). */
  private readonly residentZStore: Int16Array | null;
  private passes: LocalSpanPasses | null = null;
  private base: Float32Array | null = null;
  private sums: Float64Array | null = null;
  private readonly applied = new Map<number, number>();
  private appliedSumAbs = 0;
  private federationSeed: number | null = null;
  private eta = 0;

  constructor(inits: readonly TensorInit[], options: ParameterSetOptions = {}) {
    if (inits.length === 0) throw new Error('a ParameterSet needs at least one tensor');
    const sorted = [...inits].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const offsets: number[] = [];
    let next = 0;
    for (let t = 0; t < sorted.length; t++) {
      const { name, dims, data } = sorted[t];
      if (t > 0 && sorted[t - 1].name === name) throw new Error(`duplicate tensor name "${name}"`);
      const size = dims.reduce((a, b) => a * b, 1);
      if (!dims.every((d) => Number.isInteger(d) && d >= 0) || size !== data.length) {
        throw new Error(`tensor "${name}": dims [${dims.join(', ')}] do not match its ${data.length} values`);
      }
      offsets.push(next);
      next = align8(next + size);
    }
    if (next > 2 ** 32) throw new RangeError(`${next} parameter indices exceed the generator's 2^32 index space`);
    this.indexSpan = next;

    this.kernels = createKernels(options.kernel ?? 'auto');
    this.kernel = this.kernels.name;
    this.useZStore = options.zStore ?? this.kernel === 'wasm-simd';
    const residentViews = options.resident === false ? null : allocateResident(this.kernels, next, this.useZStore);
    this.resident = residentViews !== null;
    this.span = residentViews?.weights ?? new Float32Array(next);
    this.residentZStore = residentViews?.zStore ?? null;

    const tensors: ParameterTensor[] = [];
    for (let t = 0; t < sorted.length; t++) {
      const { name, dims, data } = sorted[t];
      const view = this.span.subarray(offsets[t], offsets[t] + data.length);
      view.set(data);
      tensors.push({ name, dims: [...dims], offset: offsets[t], size: data.length, data: view });
    }
    this.tensors = tensors;
    this.weights = new Map(tensors.map((t) => [t.name, t.data]));
    this.dims = new Map(tensors.map((t) => [t.name, t.dims]));
    this.parameterCount = tensors.reduce((a, t) => a + t.size, 0);
  }

  /** w += s·z(key) over every parameter. */
  perturb(key: number, s: number): void {
    this.ensureBase();
    this.spanPasses().perturb(key, s);
  }

  /** w += a·z(keyA) then + b·z(keyB), fused into one pass (restore+update fused with the next perturbation). */
  perturb2(keyA: number, a: number, keyB: number, b: number): void {
    this.ensureBase();
    this.spanPasses().perturb2(keyA, a, keyB, b);
  }

  /**
   * Applies ΔC (integer units of 2^-16, parallel to seed indices) to the exact accumulator S and
   * re-materialises the working weights: w = fl32(w0 − η·2^-28·S). Any local perturbation is discarded.
   * Refuses, before changing anything, an update that could leave the exact integer range.
   */
  applyCoefficientDelta(
    federationSeed: number,
    seeds: ArrayLike<number>,
    deltas: ArrayLike<number>,
    eta: number,
  ): void {
    if (!Number.isInteger(federationSeed) || federationSeed < 0 || federationSeed > 0xffffffff) {
      throw new RangeError(`federation seed must be an unsigned 32-bit integer, got ${federationSeed}`);
    }
    if (this.federationSeed !== null && this.federationSeed !== federationSeed) {
      throw new Error(
        `federation seed ${federationSeed} differs from ${this.federationSeed}, whose coefficients are already applied`,
      );
    }
    if (seeds.length !== deltas.length) throw new RangeError('seeds and deltas differ in length');
    if (!Number.isFinite(eta)) throw new RangeError(`learning rate must be finite, got ${eta}`);
    const keys: number[] = [];
    const coeffs: number[] = [];
    for (let n = 0; n < seeds.length; n++) {
      const j = seeds[n];
      const d = deltas[n];
      if (!Number.isInteger(j) || j < 0 || j > 0xffffffff) throw new RangeError(`seed index ${j} is not a uint32`);
      if (!Number.isSafeInteger(d)) throw new RangeError(`ΔC for seed ${j} is not an exact integer (${d})`);
      if (d === 0) continue;
      keys.push(seedKey(federationSeed, j));
      coeffs.push(d);
    }
    // Bounds every intermediate value of S whatever the kernel's order of additions.
    assertWithinExactBound(this.appliedSumAbs + sumAbs(coeffs), 'coefficient update');

    this.ensureBase();
    this.sums ??= new Float64Array(this.indexSpan);
    this.federationSeed = federationSeed;
    this.eta = eta;
    for (let n = 0; n < seeds.length; n++) {
      const j = seeds[n];
      const c = (this.applied.get(j) ?? 0) + deltas[n];
      if (c === 0) this.applied.delete(j);
      else this.applied.set(j, c);
    }
    this.appliedSumAbs = sumAbs([...this.applied.values()]);
    if (keys.length > 0) this.kernels.accumulate(this.sums, 0, Uint32Array.from(keys), Float64Array.from(coeffs));
    this.kernels.materialize(this.span, this.base as Float32Array, this.sums, -eta * S_UNIT);
  }

  /** The applied coefficient vector C as seed index → integer units (zeros omitted). */
  appliedCoefficients(): ReadonlyMap<number, number> {
    return new Map(this.applied);
  }

  /**
   * Returns the working weights to the canonical replica (w0 plus the applied coefficients), dropping
   * local steps. Re-materialises from w0 and S: no extra copy of the weights is kept for this.
   */
  resetToBase(): void {
    if (this.base === null) return; // never mutated
    if (this.sums === null) this.span.set(this.base);
    else this.kernels.materialize(this.span, this.base, this.sums, -this.eta * S_UNIT);
  }

  /** A copy of all working weights (by global index), for restore(). */
  snapshot(): Float32Array {
    return this.span.slice();
  }

  restore(snapshot: Float32Array): void {
    if (snapshot.length !== this.indexSpan) {
      throw new RangeError(`snapshot holds ${snapshot.length} values, this set spans ${this.indexSpan}`);
    }
    this.ensureBase();
    this.span.set(snapshot);
  }

  /** SHA-256 (hex) of the working weights' little-endian bytes, tensor by tensor in offset order. */
  digest(): string {
    const hash = createHash('sha256');
    for (const t of this.tensors) hash.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    return hash.digest('hex');
  }

  /** Created at the first pass, so a set used only for inference allocates no JS-side store. */
  private spanPasses(): LocalSpanPasses {
    if (this.passes === null) {
      const zq = !this.useZStore ? null : this.kernel === 'js' ? new Int16Array(this.indexSpan) : this.residentZStore;
      this.passes = new LocalSpanPasses(this.kernels, 0, this.span, zq);
    }
    return this.passes;
  }

  /** w0 is captured lazily, before the first change, so a set used only for inference never copies it. */
  private ensureBase(): void {
    this.base ??= this.span.slice();
  }
}

/** Weights and store in one growth where both fit, else the weights alone (every pass then hashes). */
function allocateResident(kernels: PerturbationKernels & Partial<ResidentMemory>, length: number, zStore: boolean): ResidentViews | null {
  if (!kernels.allocateResidentViews) return null;
  return (zStore ? kernels.allocateResidentViews(length, length) : null) ?? kernels.allocateResidentViews(length, 0);
}
