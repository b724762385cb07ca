// The trainable parameters of a model as the ZO engine sees them: float32 working weights laid out by
// global index (docs/zo-engine.md), the base w0 and the exact accumulator S, and whole-model kernels.
import { createHash } from 'node:crypto';
import { COEFFICIENT_SCALE, sumAbs } from '../../protocol';
import { assertWithinExactBound } from './coefficients';
import { seedKey, ZQ_SCALE } from './generator';
import type { KernelName, PerturbationKernels, ResidentMemory, ResidentViews } from './kernels';
import { createKernels, type KernelChoice } from './kernels-select';
import { FarRange } from './far-range';
import { LocalSpanPasses, type PassRequest } from './span-passes';

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
   * its other passes read it back. Default: on for WASM kernels (where it must fit next to the resident
   * weights, else every pass hashes) below PARALLEL_MIN_PARAMETERS or with split passes; off for larger
   * single-thread sets, whose passes are bound by memory bandwidth (the store adds 4 bytes of traffic per
   * parameter and step), and for JS, where reading the store costs as much as hashing. Same bits either way.
   */
  readonly zStore?: boolean;
  /**
   * Split each pass between the calling thread and a worker thread: 'auto' from PARALLEL_MIN_PARAMETERS
   * on, 'on' always, 'off' (default) never; only with resident WASM weights. The upper range of the
   * weights then lives in its own ArrayBuffer, which moves to the worker for each pass and comes back as
   * a new array: bind sessions with bindTo() so they follow. Until something is bound, both ranges are
   * perturbed on the calling thread (slower than no split: the upper range goes through a copy). Same
   * bits either way.
   */
  readonly parallelPasses?: 'auto' | 'off' | 'on';
}

/** What follows the weights: an inference session's bindWeights. */
export interface WeightConsumer {
  bindWeights(weights: ReadonlyMap<string, Float32Array>): void;
}

/** Below this a pass takes a few milliseconds and a worker round trip is not worth it. */
export const PARALLEL_MIN_PARAMETERS = 8_000_000;

/** The calling thread's share of a split pass: it works in place, the worker copies through a chunk. */
const NEAR_SHARE = 0.55;

/** 2^-28: 2^-16 for the coefficient units times 2^-12 for the table. */
const S_UNIT = 1 / (COEFFICIENT_SCALE * ZQ_SCALE);

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

interface TensorSlot {
  readonly name: string;
  readonly dims: readonly number[];
  readonly offset: number;
  readonly size: number;
  data: Float32Array;
}

export class ParameterSet {
  /** Tensors in offset (name) order. `data` is replaced after a split pass: read it when needed. */
  readonly tensors: readonly ParameterTensor[];
  readonly dims: ReadonlyMap<string, readonly number[]>;
  /** d: the number of real parameters. */
  readonly parameterCount: number;
  /** Global indices in use, gaps included: the length of w0 and S. */
  readonly indexSpan: number;
  readonly kernel: KernelName;
  /** True when the working weights live inside the WASM memory (zero-copy perturbation). */
  readonly resident: boolean;

  private readonly kernels: PerturbationKernels;
  private readonly slots: TensorSlot[];
  private readonly weightArrays = new Map<string, Float32Array>();
  /** Working weights by global index from 0 (all of them, or the lower range of a split set). */
  private readonly span: Float32Array;
  /** The upper range of a split set. */
  private readonly far: FarRange | null;
  private readonly consumers = new Set<WeightConsumer>();
  private farViewsBuffer: ArrayBufferLike | null = null;
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
  private changes = 0;
  /** Whether the working weights may differ from the replica (w0 and the applied coefficients). */
  private local = false;

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
    this.parameterCount = sorted.reduce((a, t) => a + t.data.length, 0);
    const mode = options.parallelPasses ?? 'off';
    const large = this.parameterCount >= PARALLEL_MIN_PARAMETERS;
    const wantSplit = this.kernel === 'wasm-simd' && options.resident !== false && (mode === 'on' || (mode === 'auto' && large));
    this.useZStore = options.zStore ?? (this.kernel === 'wasm-simd' && (wantSplit || !large));
    const split = wantSplit ? splitIndex(offsets, next) : next;
    let residentViews = allocateResident(this.kernels, options.resident === false ? 0 : split, this.useZStore);
    if (residentViews === null && split < next) residentViews = allocateResident(this.kernels, next, this.useZStore);
    const farFrom = residentViews !== null && residentViews.weights.length < next ? split : next;
    this.resident = residentViews !== null;
    this.span = residentViews?.weights ?? new Float32Array(next);
    this.residentZStore = residentViews?.zStore ?? null;
    this.far = farFrom < next ? new FarRange(farFrom, next - farFrom, this.useZStore) : null;

    this.slots = sorted.map(({ name, dims, data }, t) => ({ name, dims: [...dims], offset: offsets[t], size: data.length, data }));
    this.viewSlots();
    for (let t = 0; t < sorted.length; t++) this.slots[t].data.set(sorted[t].data);
    this.tensors = this.slots;
    this.dims = new Map(this.slots.map((t) => [t.name, t.dims]));
  }

  /** Weight arrays by name. The map stays the same object; a split pass replaces the upper range's arrays. */
  get weights(): ReadonlyMap<string, Float32Array> {
    return this.weightArrays;
  }

  /** True when passes are split between this thread and a worker (once something is bound). */
  get split(): boolean {
    return this.far !== null;
  }

  /**
   * Binds the weights to `consumer` now and again whenever arrays are replaced; returns the unbinding.
   * While anything is bound, a split set runs its passes on two threads.
   */
  bindTo(consumer: WeightConsumer): () => void {
    consumer.bindWeights(this.weights);
    this.consumers.add(consumer);
    return () => this.consumers.delete(consumer);
  }

  /** Stops the pass worker, if one was started. The set stays usable (passes on this thread). */
  dispose(): void {
    this.consumers.clear();
    this.far?.dispose();
  }

  /**
   * Counts changes of the working weights' values (passes, coefficient updates, a reset that dropped local
   * steps, restore): a copy held elsewhere (a device's) is current while this number is unchanged.
   */
  get version(): number {
    return this.changes;
  }

  /**
   * The working weights as one array by global index (gaps included): the resident span itself when the
   * set is not split (no copy: do not keep it across passes), else a copy.
   */
  spanData(): Float32Array {
    return this.far === null ? this.span : this.snapshot();
  }

  /** w += s·z(key) over every parameter. */
  perturb(key: number, s: number): void {
    this.pass({ kind: 'perturb', key, s });
  }

  /** w += a·z(keyA) then + b·z(keyB), fused into one pass (restore+update fused with the next perturbation). */
  perturb2(keyA: number, a: number, keyB: number, b: number): void {
    this.pass({ kind: 'perturb2', keyA, a, keyB, b });
  }

  private pass(request: PassRequest): void {
    this.ensureBase();
    this.changes++;
    this.local = true;
    const near = (): void => this.spanPasses().run(this.span, request);
    if (this.far === null) return near();
    let moved = false;
    try {
      moved = this.far.run(request, this.consumers.size > 0, near);
    } finally {
      // Also after a failed worker pass: its weights came back in a new array too.
      if (moved || this.far.data.buffer !== this.farViewsBuffer) this.farMoved();
    }
  }

  /** Points the tensors and the weight map at the current arrays. */
  private viewSlots(): void {
    for (const slot of this.slots) {
      const inFar = this.far !== null && slot.offset >= this.far.offset;
      const range = inFar ? (this.far as FarRange).data : this.span;
      const start = slot.offset - (inFar ? (this.far as FarRange).offset : 0);
      slot.data = range.subarray(start, start + slot.size);
      this.weightArrays.set(slot.name, slot.data);
    }
    this.farViewsBuffer = this.far?.data.buffer ?? null;
  }

  private farMoved(): void {
    this.viewSlots();
    for (const consumer of this.consumers) consumer.bindWeights(this.weights);
  }

  /** The weights as contiguous ranges of global indices. */
  private ranges(): { readonly offset: number; readonly data: Float32Array }[] {
    const near = { offset: 0, data: this.span };
    return this.far === null ? [near] : [near, { offset: this.far.offset, data: this.far.data }];
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
    this.materialize();
  }

  private materialize(): void {
    this.changes++;
    this.local = false;
    const base = this.base as Float32Array;
    const sums = this.sums as Float64Array;
    for (const { offset, data } of this.ranges()) {
      const end = offset + data.length;
      this.kernels.materialize(data, base.subarray(offset, end), sums.subarray(offset, end), -this.eta * S_UNIT);
    }
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
    if (this.base === null || !this.local) return; // never mutated, or already the replica
    if (this.sums !== null) return this.materialize();
    this.changes++;
    this.local = false;
    for (const { offset, data } of this.ranges()) data.set(this.base.subarray(offset, offset + data.length));
  }

  /** A copy of all working weights (by global index), for restore(). */
  snapshot(): Float32Array {
    const copy = new Float32Array(this.indexSpan);
    for (const { offset, data } of this.ranges()) copy.set(data, offset);
    return copy;
  }

  restore(snapshot: Float32Array): void {
    if (snapshot.length !== this.indexSpan) {
      throw new RangeError(`snapshot holds ${snapshot.length} values, this set spans ${this.indexSpan}`);
    }
    this.ensureBase();
    this.changes++;
    this.local = true;
    for (const { offset, data } of this.ranges()) data.set(snapshot.subarray(offset, offset + data.length));
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
      this.passes = new LocalSpanPasses(this.kernels, 0, zq);
    }
    return this.passes;
  }

  /** w0 is captured lazily, before the first change, so a set used only for inference never copies it. */
  private ensureBase(): void {
    this.base ??= this.snapshot();
  }
}

/** Weights and store in one growth where both fit, else the weights alone (every pass then hashes). */
/**
 * The tensor boundary nearest to NEAR_SHARE of the span (tensors are never split), or the span's end
 * when no boundary leaves both ranges at least a quarter of it.
 */
function splitIndex(offsets: readonly number[], span: number): number {
  let best = span;
  for (const offset of offsets) {
    if (offset < span / 4 || offset > (span * 3) / 4) continue;
    if (Math.abs(offset - NEAR_SHARE * span) < Math.abs(best - NEAR_SHARE * span)) best = offset;
  }
  return best;
}

function allocateResident(kernels: PerturbationKernels & Partial<ResidentMemory>, length: number, zStore: boolean): ResidentViews | null {
  if (!kernels.allocateResidentViews || length === 0) return null;
  return (zStore ? kernels.allocateResidentViews(length, length) : null) ?? kernels.allocateResidentViews(length, 0);
}
