// Perturbation passes over one contiguous range of global indices, with the seed's Zq kept between
// passes: a ZO step's +εz, −2εz and restore+update all use the same seed, so it is generated once
// (perturbStore / perturb2Stored) and read back from the store by the passes after it (perturbStored).
// The store is a cache keyed by the seed's key: it never changes which values are computed, only
// whether they are hashed or read.
import type { PerturbationKernels } from './kernels';

/** One pass, as the kernels name it; s, a and b are unscaled (the kernels apply fl32(·/4096)). */
export type PassOp =
  | { readonly kind: 'perturb'; readonly key: number; readonly s: number }
  | { readonly kind: 'perturb2'; readonly keyA: number; readonly a: number; readonly keyB: number; readonly b: number }
  | { readonly kind: 'perturbStore'; readonly key: number; readonly s: number }
  | { readonly kind: 'perturbStored'; readonly key: number; readonly s: number }
  | { readonly kind: 'perturb2Stored'; readonly keyA: number; readonly a: number; readonly keyB: number; readonly b: number };

/** What a caller asks for; the store decides which kernel pass serves it. */
export type PassRequest = Extract<PassOp, { kind: 'perturb' | 'perturb2' }>;

/** Which seed's Zq a store holds, and the pass that serves a request given that. */
export class StoredSeed {
  private key: number | null = null;

  constructor(private readonly hasStore: boolean) {}

  plan(request: PassRequest): PassOp {
    return request.kind === 'perturb' ? this.planPerturb(request.key, request.s) : this.planPerturb2(request.keyA, request.a, request.keyB, request.b);
  }

  /** w += s·z(key). */
  planPerturb(key: number, s: number): PassOp {
    if (!this.hasStore) return { kind: 'perturb', key, s };
    return this.key === key ? { kind: 'perturbStored', key, s } : { kind: 'perturbStore', key, s };
  }

  /** w += a·z(keyA) then + b·z(keyB). Without keyA in the store both are hashed and the store is left as is. */
  planPerturb2(keyA: number, a: number, keyB: number, b: number): PassOp {
    if (this.hasStore && this.key === keyA) return { kind: 'perturb2Stored', keyA, a, keyB, b };
    return { kind: 'perturb2', keyA, a, keyB, b };
  }

  /** Call before running op: a pass that fails halfway leaves the store unknown. */
  begin(op: PassOp): void {
    if (op.kind !== 'perturb' && op.kind !== 'perturb2') this.key = null;
  }

  /** Call after op completed. */
  complete(op: PassOp): void {
    if (op.kind === 'perturbStore') this.key = op.key;
    else if (op.kind === 'perturb2Stored') this.key = op.keyB;
  }
}

/** The same pass without the store: the stored seed's values are hashed again (same bits). */
export function hashedPass(op: PassOp): Extract<PassOp, { kind: 'perturb' | 'perturb2' }> {
  switch (op.kind) {
    case 'perturb':
    case 'perturb2':
      return op;
    case 'perturbStore':
    case 'perturbStored':
      return { kind: 'perturb', key: op.key, s: op.s };
    case 'perturb2Stored':
      return { kind: 'perturb2', keyA: op.keyA, a: op.a, keyB: op.keyB, b: op.b };
  }
}

/**
 * Runs `op` over `w` (global indices from `offset`). A store shorter than `w` covers its first
 * zq.length elements (a z store on part of the weights, for a memory budget); the rest are hashed.
 */
export function runPass(kernels: PerturbationKernels, w: Float32Array, zq: Int16Array | null, offset: number, op: PassOp): void {
  switch (op.kind) {
    case 'perturb':
      return kernels.perturb(w, offset, op.key, op.s);
    case 'perturb2':
      return kernels.perturb2(w, offset, op.keyA, op.a, op.keyB, op.b);
  }
  if (zq === null) throw new Error(`${op.kind} needs a z store`);
  if (zq.length < w.length) {
    runPass(kernels, w.subarray(zq.length), null, offset + zq.length, hashedPass(op));
    w = w.subarray(0, zq.length);
  }
  switch (op.kind) {
    case 'perturbStore':
      return kernels.perturbStore(w, zq, offset, op.key, op.s);
    case 'perturbStored':
      return kernels.perturbStored(w, zq, op.s);
    case 'perturb2Stored':
      return kernels.perturb2Stored(w, zq, offset, op.a, op.keyB, op.b);
  }
}

/**
 * A tensor's place in a range and its shape multiplier m (a power of two, trainer/zo/shape.ts): a shaped
 * pass runs each segment with its step scaled by m and leaves the gaps between tensors alone.
 */
export interface Segment {
  /** First element, relative to the range's start (even: tensors start at multiples of 8). */
  readonly start: number;
  readonly end: number;
  readonly multiplier: number;
}

/** The same pass with every step scaled by m (exact: m is a power of two, so fl32(m·s/4096) = m·fl32(s/4096)). */
export function scaledOp<T extends PassOp>(op: T, m: number): T {
  if (m === 1) return op;
  return 's' in op ? { ...op, s: op.s * m } : { ...op, a: op.a * m, b: op.b * m };
}

/**
 * runPass over each segment with its multiplier (a segment of multiplier 0 is skipped: its tensor is not
 * trained). The store covers the range's first zq.length elements; a segment past it is hashed.
 */
export function runShapedPass(
  kernels: PerturbationKernels,
  w: Float32Array,
  zq: Int16Array | null,
  offset: number,
  op: PassOp,
  segments: readonly Segment[],
): void {
  for (const { start, end, multiplier } of segments) {
    if (multiplier === 0 || end <= start) continue;
    const part = w.subarray(start, end);
    const stored = zq !== null && start < zq.length ? zq.subarray(start, Math.min(end, zq.length)) : null;
    const partOp = scaledOp(op, multiplier);
    runPass(kernels, part, stored, offset + start, stored === null ? hashedPass(partOp) : partOp);
  }
}

/** A range processed on the calling thread; its weights array is passed per call (it may be replaced). */
export class LocalSpanPasses {
  private readonly stored: StoredSeed;
  /** Null: one pass over the whole range (isotropic); else tensor by tensor with their multipliers. */
  segments: readonly Segment[] | null = null;

  /**
   * zq: the store (inside the kernels' memory for WASM) for the range's first zq.length elements (an even
   * number), or null to hash every pass.
   */
  constructor(
    private readonly kernels: PerturbationKernels,
    private readonly offset: number,
    private readonly zq: Int16Array | null,
  ) {
    if (zq !== null && zq.length % 2 !== 0) throw new RangeError('a z store covers an even number of parameters');
    this.zq = zq !== null && zq.length > 0 ? zq : null;
    this.stored = new StoredSeed(this.zq !== null);
  }

  /** Parameters the store covers (0 without one). */
  get storedLength(): number {
    return this.zq?.length ?? 0;
  }

  run(w: Float32Array, request: PassRequest): void {
    const op = this.stored.plan(request);
    this.stored.begin(op);
    if (this.segments === null) runPass(this.kernels, w, this.zq, this.offset, op);
    else runShapedPass(this.kernels, w, this.zq, this.offset, op, this.segments);
    this.stored.complete(op);
  }
}
