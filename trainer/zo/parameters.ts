// The trainable parameters of a model as the ZO engine sees them: float32 working weights laid out by
// global index (docs/zo-engine.md), the base w0 and the exact accumulator S, and whole-model kernels.
import { createHash } from 'node:crypto';
import { COEFFICIENT_SCALE, sumAbs, type Generator } from '../../protocol';
import { assertWithinExactBound } from './coefficients';
import { seedKey, ZQ_SCALE } from './generator';
import type { KernelName, PerturbationKernels, ResidentMemory, ResidentViews } from './kernels';
import { createKernels, type KernelChoice } from './kernels-select';
import { FarRange } from './far-range';
import type { PassWorker } from './pass-worker';
import { defaultSpillDir, ReplicaFile, ScratchFile } from './replica-file';
import { blockAt, matrixBlocks, rank1Accumulate, rank1PassRange, rank1SumsJobs, type MatrixBlock } from './rank1';
import { compactLayout, type CompactLayout } from './rank1-compact';
import { LocalSpanPasses, type PassRequest, type Segment } from './span-passes';
import { shapeMultipliers, sumSquares, type PerturbationShape, type TensorEnergy } from './shape';

/** Reads a tensor's base values w0 back on demand (from the model's file), so the set need not hold them. */
export interface BaseReader {
  /** Fills `out` with the tensor's values [start, start + out.length). */
  read(start: number, out: Float32Array): void;
  /** Releases what the reads held open; called after each whole-model operation. */
  close?(): void;
}

export interface TensorInit {
  readonly name: string;
  readonly dims: readonly number[];
  /** The base values; may be empty when `source` reads them (the set then fills its own memory from it). */
  readonly data: Float32Array;
  readonly source?: BaseReader;
}

/**
 * How the exact accumulator is kept: 'held', S as a float64 per parameter (8 bytes each; a coefficient
 * change costs its own seeds); 'coefficients', only the applied integer coefficients C, with S recomputed
 * chunk by chunk from every applied seed whenever C changes and the replica's float32 weights written to
 * a scratch file for resetToBase (no memory per parameter; a change costs all applied seeds); 'file', S
 * as float64 in a scratch file (8 bytes per parameter on disk, none in memory), streamed piece by piece
 * when C changes (a change costs its own seeds plus reading and writing S once).
 */
export const SUMS_MODES = ['held', 'file', 'coefficients'] as const;
export type SumsMode = (typeof SUMS_MODES)[number];

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
   * parameter and step), and for JS, where reading the store costs as much as hashing. A number in [0, 1]
   * keeps that share of each range's parameters in the store (a memory budget's choice) and hashes the
   * rest. Same bits either way.
   */
  readonly zStore?: boolean | number;
  /**
   * w0: 'source' (default) reads each tensor's base values back through its `source` where it has one
   * (held only for tensors without); 'held' copies every tensor before the first change, as a set without
   * sources does.
   */
  readonly base?: 'source' | 'held';
  /** How S is kept (default 'held'); see SumsMode. */
  readonly sums?: SumsMode;
  /** Folder of the replica file of sums 'coefficients' and the S file of sums 'file' (default: defaultSpillDir()). */
  readonly spillDir?: string;
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

/** Parameters per piece of a chunked whole-model operation (w0 read back, S recomputed): 4 MiB of float32. */
const PIECE = 1 << 20;

/** A partial z store covers whole chunks of the kernels' scratch (a worker streams its range by them). */
const STORE_GRAIN = 8192;

/** What a ParameterSet holds, in bytes (memoryUsage()). */
export interface ParameterMemory {
  /** Working weights (float32, by global index, gaps included). */
  readonly weights: number;
  /** Copies of w0 held (tensors without a source, or base 'held'). */
  readonly base: number;
  /** The exact accumulator S (float64 per index), when held. */
  readonly sums: number;
  /** z store (int16 per stored parameter), the worker's included. */
  readonly zStore: number;
  /** Scratch of chunked operations (w0 pieces, S pieces). */
  readonly scratch: number;
  /** Bytes of the replica file on disk (sums 'coefficients'), not memory. */
  readonly replicaFile: number;
  /** Bytes of the S file on disk (sums 'file'), not memory. */
  readonly sumsFile: number;
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

interface TensorSlot {
  /** Position in offset (name) order. */
  readonly index: number;
  readonly name: string;
  readonly dims: readonly number[];
  readonly offset: number;
  readonly size: number;
  data: Float32Array;
  /** Where w0 is read back from (null: a copy is held, taken before the first change). */
  readonly source: BaseReader | null;
  baseCopy: Float32Array | null;
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
  /** Share of each range's parameters kept in the z store (0: none). */
  private readonly storeShare: number;
  /** The WASM store, allocated with the resident weights (a later growth would move them). */
  private readonly residentZStore: Int16Array | null;
  private passes: LocalSpanPasses | null = null;
  private nearSegments: readonly Segment[] | null = null;
  /** Whether w0 has been secured (copies taken for tensors without a source) before a first change. */
  private baseSecured = false;
  readonly sumsMode: SumsMode;
  private readonly spillDir: string | undefined;
  private sums: Float64Array | null = null;
  /** Whether coefficients were ever applied (the replica is then materialised, else it is w0 itself). */
  private materialized = false;
  private replicaFile: ReplicaFile | null = null;
  /**
   * S of every applied coefficient (sums 'file'); null before the first change, while C is zero, and after
   * a failed materialisation left it partly updated (the next one recomputes it from `applied`).
   */
  private sumsFile: ScratchFile | null = null;
  private scratchW0: Float32Array | null = null;
  private scratchS: Float64Array | null = null;
  /** The S piece the worker fills (it moves there and back with each piece). */
  private workerS: Float64Array | null = null;
  private readonly applied = new Map<number, number>();
  private appliedSumAbs = 0;
  private federationSeed: number | null = null;
  private eta = 0;
  /** Σ w0² of each slot, taken when the weights were loaded: what a shape's multipliers derive from. */
  private readonly baseEnergy: readonly TensorEnergy[];
  private shapeName: PerturbationShape = 'isotropic';
  private generatorName: Generator = 'iid';
  /** The tensors the rank-1 generator factors; null under 'iid'. */
  private blocks: readonly MatrixBlock[] | null = null;
  /** Per-slot multipliers of the shape (null: isotropic, every multiplier 1). */
  private multipliers: Float64Array | null = null;
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
      const deferred = data.length === 0 && size > 0 && sorted[t].source !== undefined;
      if (!dims.every((d) => Number.isInteger(d) && d >= 0) || (size !== data.length && !deferred)) {
        throw new Error(`tensor "${name}": dims [${dims.join(', ')}] do not match its ${data.length} values`);
      }
      offsets.push(next);
      next = align8(next + size);
    }
    if (next > 2 ** 32) throw new RangeError(`${next} parameter indices exceed the generator's 2^32 index space`);
    this.indexSpan = next;

    this.kernels = createKernels(options.kernel ?? 'auto');
    this.kernel = this.kernels.name;
    const sizes = sorted.map((t) => t.dims.reduce((a, b) => a * b, 1));
    this.parameterCount = sizes.reduce((a, b) => a + b, 0);
    const mode = options.parallelPasses ?? 'off';
    const large = this.parameterCount >= PARALLEL_MIN_PARAMETERS;
    const wantSplit = this.kernel === 'wasm-simd' && options.resident !== false && (mode === 'on' || (mode === 'auto' && large));
    const store = options.zStore ?? (this.kernel === 'wasm-simd' && (wantSplit || !large));
    this.storeShare = store === true ? 1 : store === false ? 0 : Math.min(1, Math.max(0, store));
    if (!Number.isFinite(this.storeShare)) throw new RangeError(`zStore must be a boolean or a share in [0, 1], got ${store}`);
    this.sumsMode = options.sums ?? 'held';
    if (!SUMS_MODES.includes(this.sumsMode)) throw new RangeError(`unknown sums mode "${String(this.sumsMode)}"`);
    this.spillDir = options.spillDir;
    let split = wantSplit ? splitIndex(offsets, next) : next;
    // A 32-bit instance addresses 4 GiB: past ~1.2B parameters the lower 55% and its z store do not fit, past
    // ~1.9B the weights alone do not. The lower range then ends at an earlier tensor boundary (not below a
    // quarter; the worker's range grows), the store kept before the split point is given up: a hashed pass
    // costs ~1.5× a stored one, a worker's element ~1.2× one done in place.
    const bounds = wantSplit ? [split, ...offsets.filter((o) => o < split && o >= next / 4).reverse()] : [split];
    let residentViews: ResidentViews | null = null;
    if (options.resident !== false) {
      for (const store of this.storeShare > 0 ? [true, false] : [false]) {
        for (const at of bounds) {
          residentViews = allocateResident(this.kernels, at, store ? this.storedOf(at) : 0);
          if (residentViews !== null) {
            split = at;
            break;
          }
        }
        if (residentViews !== null) break;
      }
      if (residentViews === null && split < next)
        residentViews = allocateResident(this.kernels, next, this.storedOf(next)) ?? allocateResident(this.kernels, next, 0);
    }
    const farFrom = residentViews !== null && residentViews.weights.length < next ? split : next;
    this.resident = residentViews !== null;
    this.span = residentViews?.weights ?? new Float32Array(next);
    this.residentZStore = residentViews?.zStore ?? null;
    this.far = farFrom < next ? new FarRange(farFrom, next - farFrom, this.storedOf(next - farFrom)) : null;

    const useSources = (options.base ?? 'source') === 'source';
    this.slots = sorted.map(({ name, dims, data, source }, t) => ({
      index: t,
      name,
      dims: [...dims],
      offset: offsets[t],
      size: sizes[t],
      data,
      source: useSources && source ? source : null,
      baseCopy: null,
    }));
    this.viewSlots();
    try {
      for (let t = 0; t < sorted.length; t++) {
        const { data, source } = sorted[t];
        if (data.length === this.slots[t].size) this.slots[t].data.set(data);
        else (source as BaseReader).read(0, this.slots[t].data);
      }
    } finally {
      for (const { source } of sorted) source?.close?.();
    }
    this.tensors = this.slots;
    this.dims = new Map(this.slots.map((t) => [t.name, t.dims]));
    this.baseEnergy = this.slots.map((slot) => ({ size: slot.size, sumSquares: sumSquares(slot.data) }));
  }

  /** The perturbation's shape (trainer/zo/shape.ts): 'isotropic' until set. */
  get shape(): PerturbationShape {
    return this.shapeName;
  }

  /**
   * The shape's multiplier of every global index (0 in the gaps between tensors), for a device that applies
   * shaped passes over the whole span; null when isotropic.
   */
  shapeSpan(): Float32Array | null {
    if (this.multipliers === null) return null;
    const span = new Float32Array(this.indexSpan);
    for (const slot of this.slots) span.fill(this.multipliers[slot.index], slot.offset, slot.offset + slot.size);
    return span;
  }

  /** Each tensor's multiplier under the current shape, by name (every one 1 when isotropic). */
  shapeMultipliers(): ReadonlyMap<string, number> {
    return new Map(this.slots.map((slot, t) => [slot.name, this.multipliers?.[t] ?? 1]));
  }

  /**
   * Sets how z is scaled tensor by tensor: passes then scale each tensor's step by its multiplier and the
   * replica is w0 + m ⊙ (−η·2⁻²⁸·S). Changing it re-materialises an applied replica (local steps dropped).
   */
  setShape(shape: PerturbationShape): void {
    if (shape === this.shapeName) return;
    const m = shapeMultipliers(shape, this.baseEnergy);
    this.shapeName = shape;
    this.multipliers = m.every((x) => x === 1) ? null : m;
    // Segments relative to each range, neighbours of one multiplier with no gap between them merged (fewer
    // kernel calls per pass; the same operations on every element); the passes are made anew (their stored
    // seed covered other segments).
    const segments = (from: number, to: number): Segment[] | null => {
      if (this.multipliers === null) return null;
      const out: Segment[] = [];
      for (const slot of this.slots) {
        if (slot.offset < from || slot.offset >= to) continue;
        const multiplier = this.multipliers[slot.index];
        const start = slot.offset - from;
        const end = start + slot.size;
        const previous = out.at(-1);
        if (previous && previous.end === start && previous.multiplier === multiplier) out[out.length - 1] = { ...previous, end };
        else out.push({ start, end, multiplier });
      }
      return out;
    };
    const nearEnd = this.far?.offset ?? this.indexSpan;
    this.nearSegments = segments(0, nearEnd);
    this.passes = null;
    this.far?.setSegments(segments(nearEnd, this.indexSpan));
    if (this.materialized) this.materialize();
    else if (this.local) this.resetToBase();
  }

  /** How z is generated (trainer/zo/rank1.ts): 'iid' until set. */
  get generator(): Generator {
    return this.generatorName;
  }

  /**
   * Sets how z is generated. The accumulator S depends on it, so applied coefficients are replayed from
   * w0 under the new generator (exact: the same replica any client rebuilds); local steps are dropped.
   * Rank-1 passes run on this thread, without the z store (its seed costs R + C hashes per matrix).
   */
  setGenerator(generator: Generator): void {
    if (generator === this.generatorName) return;
    const applied = [...this.applied];
    const federationSeed = this.federationSeed;
    const eta = this.eta;
    if (applied.length > 0 || this.materialized) this.rebuildFromBase();
    else if (this.local) this.resetToBase();
    this.generatorName = generator;
    this.blocks = generator === 'rank1' ? matrixBlocks(this.slots) : null;
    this.passes = null;
    if (applied.length > 0 && federationSeed !== null) {
      this.applyCoefficientDelta(
        federationSeed,
        applied.map(([j]) => j),
        applied.map(([, c]) => c),
        eta,
      );
    }
  }

  /**
   * Under the rank-1 generator, how a pass's z (times the shape's multipliers) travels compactly to a
   * device: each matrix's factors and every other index's value (trainer/zo/rank1.ts); null under 'iid'.
   */
  rank1Layout(): CompactLayout | null {
    if (this.blocks === null) return null;
    return compactLayout(this.slots, this.multipliers, this.indexSpan);
  }

  /** S += Σ_j coeffs[j]·value_j over S (global indices from offset), under the set's generator. */
  private accumulate(S: Float64Array, offset: number, keys: Uint32Array, coeffs: Float64Array): void {
    if (this.blocks === null) this.kernels.accumulate(S, offset, keys, coeffs);
    else rank1Accumulate(S, offset, this.blocks, keys, coeffs);
  }

  /** A pass of the rank-1 generator over every range, each tensor with its shape multiplier. */
  private rank1Pass(blocks: readonly MatrixBlock[], request: PassRequest): void {
    const pass =
      request.kind === 'perturb' ? { keys: [request.key], steps: [request.s] } : { keys: [request.keyA, request.keyB], steps: [request.a, request.b] };
    for (const { offset, data } of this.ranges()) {
      const end = offset + data.length;
      if (this.multipliers === null) {
        rank1PassRange(data, offset, blocks, pass, offset, end, 1);
        continue;
      }
      for (const slot of this.slots) {
        const m = this.multipliers[slot.index];
        if (m === 0 || slot.offset < offset || slot.offset >= end) continue;
        rank1PassRange(data, offset, blocks, pass, slot.offset, slot.offset + slot.size, m);
      }
    }
  }

  /** Parameters of a range of `length` kept in the z store: all of them, or whole chunks of the share. */
  private storedOf(length: number): number {
    if (this.storeShare >= 1) return length;
    return Math.floor((this.storeShare * length) / STORE_GRAIN) * STORE_GRAIN;
  }

  /** Bytes held, by buffer (the replica and S files' sizes on disk apart). */
  memoryUsage(): ParameterMemory {
    const zStore = (this.passes?.storedLength ?? this.residentZStore?.length ?? 0) + (this.far?.zStored ?? 0);
    return {
      weights: this.indexSpan * 4,
      base: this.slots.reduce((a, t) => a + (t.baseCopy?.byteLength ?? 0), 0),
      sums: this.sums?.byteLength ?? 0,
      zStore: zStore * 2,
      scratch: (this.scratchW0?.byteLength ?? 0) + (this.scratchS?.byteLength ?? 0) + (this.workerS?.byteLength ?? 0),
      replicaFile: this.replicaFile === null ? 0 : this.indexSpan * 4,
      sumsFile: this.sumsFile === null ? 0 : this.indexSpan * 8,
    };
  }

  /** Tensors whose w0 is read back from a source (the rest hold a copy once the weights change). */
  get baseFromSource(): number {
    return this.slots.filter((t) => t.source !== null).length;
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
    this.replicaFile?.close();
    this.replicaFile = null;
    this.sumsFile?.close();
    this.sumsFile = null;
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
    this.secureBase();
    this.changes++;
    this.local = true;
    if (this.blocks !== null) return this.rank1Pass(this.blocks, request);
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
  applyCoefficientDelta(federationSeed: number, seeds: ArrayLike<number>, deltas: ArrayLike<number>, eta: number): void {
    if (!Number.isInteger(federationSeed) || federationSeed < 0 || federationSeed > 0xffffffff) {
      throw new RangeError(`federation seed must be an unsigned 32-bit integer, got ${federationSeed}`);
    }
    if (this.federationSeed !== null && this.federationSeed !== federationSeed) {
      throw new Error(`federation seed ${federationSeed} differs from ${this.federationSeed}, whose coefficients are already applied`);
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
    assertWithinExactBound(this.appliedSumAbs + sumAbs(coeffs), 'coefficient update', this.generatorName);

    this.secureBase();
    if (this.sumsMode === 'held') this.sums ??= new Float64Array(this.indexSpan);
    this.federationSeed = federationSeed;
    this.eta = eta;
    for (let n = 0; n < seeds.length; n++) {
      const j = seeds[n];
      const c = (this.applied.get(j) ?? 0) + deltas[n];
      if (c === 0) this.applied.delete(j);
      else this.applied.set(j, c);
    }
    this.appliedSumAbs = sumAbs([...this.applied.values()]);
    const delta = { keys: Uint32Array.from(keys), coeffs: Float64Array.from(coeffs) };
    if (this.sums !== null && keys.length > 0) this.accumulate(this.sums, 0, delta.keys, delta.coeffs);
    this.materialized = true;
    // With sums 'file', S is brought to the new C as it is streamed (only the delta's seeds); `applied`
    // already holds the new C, so an S file lost on the way is recomputed from it.
    this.materialize(delta);
  }

  /**
   * w = fl32(w0 + fl64(−η·2^-28·S)) tensor by tensor, a piece at a time: w0 read back from its source (or
   * its copy), S from the held accumulator, from the S file with `delta`'s seeds added and written back
   * (sums 'file'), or recomputed from every applied coefficient (exact integers, so the same values in any
   * grouping; with sums 'file' written to a new S file). With sums 'coefficients' the result is also
   * written to the replica file, for resetToBase. Index gaps between tensors are set to 0.
   */
  private materialize(delta: { readonly keys: Uint32Array; readonly coeffs: Float64Array } | null = null): void {
    this.changes++;
    // Until every piece is rebuilt, a scratch file that cannot be opened included: the next reset rebuilds.
    this.local = true;
    const scale = -this.eta * S_UNIT;
    const fileMode = this.sumsMode === 'file';
    if (fileMode && this.applied.size === 0) {
      // C is zero again, and so is S: no file until C changes.
      this.sumsFile?.close();
      this.sumsFile = null;
    }
    const streamed = fileMode && this.sumsFile !== null;
    const recompute = this.sums === null && !streamed;
    const keys: number[] = [];
    const coeffs: number[] = [];
    if (recompute && this.federationSeed !== null) {
      for (const [j, c] of this.applied) {
        keys.push(seedKey(this.federationSeed, j));
        coeffs.push(c);
      }
    }
    const keyArray = streamed ? (delta?.keys ?? new Uint32Array(0)) : Uint32Array.from(keys);
    const coeffArray = streamed ? (delta?.coeffs ?? new Float64Array(0)) : Float64Array.from(coeffs);
    const seeds = keyArray.length;
    if (fileMode && recompute && seeds > 0) this.sumsFile = new ScratchFile(this.spillDir ?? defaultSpillDir(), 'sums', 'f64');
    const sumsFile = fileMode && seeds > 0 ? this.sumsFile : null; // S written back piece by piece
    const replicate = this.sumsMode === 'coefficients' && recompute;
    if (this.replicaFile === null && replicate && seeds > 0) this.replicaFile = new ReplicaFile(this.spillDir ?? defaultSpillDir());
    if (this.replicaFile !== null && seeds === 0) {
      // C is zero again: the replica is w0 itself (rebuilt without reading S), and the file's weights stale.
      this.replicaFile.close();
      this.replicaFile = null;
    }
    const replica = replicate && seeds > 0 ? this.replicaFile : null;
    const pieces: { slot: TensorSlot; start: number; end: number }[] = [];
    for (const slot of this.slots) for (let start = 0; start < slot.size; start += PIECE) pieces.push({ slot, start, end: Math.min(slot.size, start + PIECE) });
    const finish = (piece: { slot: TensorSlot; start: number; end: number }, sums: Float64Array): void => {
      const { slot, start, end } = piece;
      sumsFile?.write(slot.offset + start, sums);
      const w = slot.data.subarray(start, end);
      this.kernels.materialize(w, this.baseOf(slot, start, end), sums, scale * (this.multipliers?.[slot.index] ?? 1));
      replica?.write(slot.offset + start, w);
    };
    // Recomputing S costs every applied seed per parameter, streaming it the delta's: with split passes the
    // worker computes every other piece's S while this thread computes its own and materialises both.
    const worker = (recompute || streamed) && seeds > 0 && this.far !== null ? this.far.sumsWorker() : null;
    try {
      for (let i = 0; i < pieces.length; i += worker ? 2 : 1) {
        const here = pieces[i];
        const there = worker ? pieces[i + 1] : undefined;
        if (there) {
          const length = there.end - there.start;
          let out: Float64Array;
          if (length === PIECE) {
            out = this.workerS ?? new Float64Array(PIECE);
            this.workerS = null; // moves to the worker
          } else {
            out = new Float64Array(length);
          }
          if (streamed) (this.sumsFile as ScratchFile).read(there.slot.offset + there.start, out);
          const from = there.slot.offset + there.start;
          const block = this.blocks === null ? null : blockAt(this.blocks, from);
          // A rank-1 matrix's piece: its factors hashed here, the product of thin matrices on the worker.
          if (block !== null) (worker as PassWorker).startRank1Sums(rank1SumsJobs(block, keyArray, coeffArray, from, from + length), out, streamed);
          else (worker as PassWorker).startSums(keyArray, coeffArray, from, out, streamed);
        }
        let theirs: Float64Array | null = null;
        try {
          let sums: Float64Array;
          if (recompute || streamed) {
            sums = this.pieceS(here.end - here.start);
            if (streamed) (this.sumsFile as ScratchFile).read(here.slot.offset + here.start, sums);
            else sums.fill(0);
            if (seeds > 0) this.accumulate(sums, here.slot.offset + here.start, keyArray, coeffArray);
          } else {
            sums = (this.sums as Float64Array).subarray(here.slot.offset + here.start, here.slot.offset + here.end);
          }
          finish(here, sums);
        } finally {
          // Always collect the worker's piece, so it never holds a buffer past this call.
          if (there) theirs = (worker as PassWorker).finishSums(seeds, there.end - there.start);
        }
        if (there && theirs) {
          finish(there, theirs);
          if (theirs.length === PIECE) this.workerS = theirs;
        }
      }
    } catch (e) {
      // Weights half rebuilt (a model file changed, a full disk): not the replica, and neither is the
      // replica file; the next reset rebuilds both. An S file written in part holds neither the old C's S
      // nor the new one's: dropped, the next materialisation recomputes it from `applied`.
      this.replicaFile?.close();
      this.replicaFile = null;
      if (sumsFile !== null) {
        this.sumsFile?.close();
        this.sumsFile = null;
      }
      throw e;
    } finally {
      this.closeSources();
    }
    this.zeroGaps();
    this.local = false;
  }

  /** w0 of slot elements [start, end): its copy, or a piece read from its source into scratch. */
  private baseOf(slot: TensorSlot, start: number, end: number): Float32Array {
    if (slot.baseCopy !== null) return slot.baseCopy.subarray(start, end);
    if (slot.source === null) throw new Error(`no base values for tensor "${slot.name}"`);
    this.scratchW0 ??= new Float32Array(PIECE);
    const out = this.scratchW0.subarray(0, end - start);
    slot.source.read(start, out);
    return out;
  }

  private pieceS(length: number): Float64Array {
    this.scratchS ??= new Float64Array(PIECE);
    return this.scratchS.subarray(0, length);
  }

  private closeSources(): void {
    for (const slot of this.slots) slot.source?.close?.();
  }

  /** Index gaps between tensors hold 0 in the replica (passes perturb them like any index). */
  private zeroGaps(): void {
    let end = 0;
    for (const slot of this.slots) {
      if (slot.offset > end) this.fillIndices(end, slot.offset, 0);
      end = slot.offset + slot.size;
    }
    if (this.indexSpan > end) this.fillIndices(end, this.indexSpan, 0);
  }

  private fillIndices(from: number, to: number, value: number): void {
    for (const { offset, data } of this.ranges()) {
      const a = Math.max(from, offset);
      const b = Math.min(to, offset + data.length);
      if (a < b) data.fill(value, a - offset, b - offset);
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
    if (!this.local) return; // never mutated, or already the replica
    if (this.materialized && (this.sums !== null || this.replicaFile === null)) return this.materialize();
    this.changes++;
    try {
      for (const slot of this.slots) {
        if (this.materialized) (this.replicaFile as ReplicaFile).read(slot.offset, slot.data);
        else if (slot.baseCopy !== null) slot.data.set(slot.baseCopy);
        else (slot.source as BaseReader).read(0, slot.data);
      }
    } finally {
      this.closeSources();
    }
    this.local = false; // only once every tensor is back
    this.zeroGaps();
  }

  /**
   * Drops every applied coefficient and rewrites the working weights from w0 (read back from each
   * tensor's source, or its copy): the replica of round 0, whatever the accumulator, the replica file or
   * the weights held before. For a replica found to differ from the federation's, which the full C then
   * rebuilds.
   */
  rebuildFromBase(): void {
    this.applied.clear();
    this.appliedSumAbs = 0;
    this.federationSeed = null;
    this.sums = null;
    this.replicaFile?.close();
    this.replicaFile = null;
    this.sumsFile?.close();
    this.sumsFile = null;
    this.materialized = false;
    this.changes++;
    this.local = true; // until every tensor is w0 again
    try {
      for (const slot of this.slots) {
        if (slot.baseCopy !== null) slot.data.set(slot.baseCopy);
        else if (slot.source !== null) slot.source.read(0, slot.data);
        // Neither: the set was never changed (secureBase copies such tensors first), so it holds w0.
      }
    } finally {
      this.closeSources();
    }
    this.local = false;
    this.zeroGaps();
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
    this.secureBase();
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
      const stored = this.storedOf(this.span.length);
      const zq = stored === 0 ? null : this.kernel === 'js' ? new Int16Array(stored) : this.residentZStore;
      this.passes = new LocalSpanPasses(this.kernels, 0, zq);
      this.passes.segments = this.nearSegments;
    }
    return this.passes;
  }

  /**
   * Before the first change: copies w0 of the tensors it cannot be read back for (all of them with base
   * 'held'), so a set used only for inference, or whose tensors all have sources, copies nothing.
   */
  private secureBase(): void {
    if (this.baseSecured) return;
    for (const slot of this.slots) if (slot.source === null) slot.baseCopy = slot.data.slice();
    this.baseSecured = true;
  }
}

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

/** Weights and `stored` store values in one growth, or null (kernels without memory, or it does not fit). */
function allocateResident(kernels: PerturbationKernels & Partial<ResidentMemory>, length: number, stored: number): ResidentViews | null {
  if (!kernels.allocateResidentViews || length === 0) return null;
  return kernels.allocateResidentViews(length, stored);
}
