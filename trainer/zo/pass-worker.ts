// A worker thread that runs the perturbation passes over one range of the weights while the calling
// thread runs them over the rest, so both cores work during a pass (onnxruntime's threads are idle then).
//
// The range's weights live in a plain ArrayBuffer that onnxruntime reads zero-copy between passes; for a
// pass it is transferred to the worker (zero-copy) and back. A SharedArrayBuffer would avoid the moves,
// but onnxruntime-node rejects tensors backed by one. The caller blocks until the worker is done
// (Atomics.wait, then receiveMessageOnPort), so a pass stays synchronous and the weights are never
// observed half-way. The worker keeps its range's z store in its own WebAssembly memory.
//
// The worker runs from source text (no file to find next to a bundle) and instantiates the same compiled
// module, so it computes with the very kernels of the calling thread, chunk by chunk.
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { ZQ } from './generator';
import { tableScale } from './kernels';
import type { PassOp, Segment } from './span-passes';
import { accumulateTiles, rank1Module, type Rank1SumsJob } from './rank1-wasm';
import { kernelModule, LAYOUT } from './wasm/load';

/** A pass as the worker receives it: multipliers already fl32(·/4096). */
interface ScaledPass {
  readonly kind: PassOp['kind'];
  readonly key: number;
  readonly s: number;
  readonly keyB: number;
  readonly b: number;
}

interface PassReply {
  readonly buffer: ArrayBuffer;
  readonly error?: string;
}

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, rank1, table, offset, length: stored, port, signal, layout } = workerData;
// The rank-1 accumulator's tile loop: the calling thread's own function (rank1-wasm.ts), as source.
const accumulateTiles = ${accumulateTiles.toString()};
let rank1Exports = null;
function rank1Sums(jobs, add, s) {
  if (rank1 === null) throw new Error('WebAssembly SIMD is not available for the rank-1 accumulator');
  rank1Exports ??= new WebAssembly.Instance(rank1, {}).exports;
  if (!add) s.fill(0);
  for (const job of jobs) accumulateTiles(rank1Exports, job, s);
}
let ex = null;
let initError = null;
try {
  ex = new WebAssembly.Instance(module, {}).exports;
  new Float32Array(ex.memory.buffer, layout.tableF32, table.length).set(table);
  new Float64Array(ex.memory.buffer, layout.tableF64, table.length).set(table);
  if (stored > 0) ex.memory.grow(Math.ceil((stored * 2) / 65536));
} catch (e) {
  initError = e;
}
const zq = layout.residentBase;
// Elements [from, to) of the range; chunks never straddle the end of the stored part.
function passRange(op, w, from, to, m) {
  const scratch = new Float32Array(ex.memory.buffer, layout.chunkW, layout.chunk);
  const s = op.s * m;
  const b = op.b * m;
  for (let start = from; start < to; ) {
    let end = Math.min(to, start + layout.chunk);
    if (start < stored && end > stored) end = stored;
    const part = w.subarray(start, end);
    const n = part.length;
    const off = offset + start;
    const zp = zq + start * 2;
    scratch.set(part);
    // Past the stored part (a store on part of the range) the stored seed is hashed again: same bits.
    const kind = end <= stored ? op.kind : op.kind === 'perturb2Stored' ? 'perturb2' : op.kind === 'perturbStore' || op.kind === 'perturbStored' ? 'perturb' : op.kind;
    switch (kind) {
      case 'perturb': ex.perturb(layout.chunkW, n, off, op.key, s); break;
      case 'perturb2': ex.perturb2(layout.chunkW, n, off, op.key, s, op.keyB, b); break;
      case 'perturbStore': ex.perturbStore(layout.chunkW, zp, n, off, op.key, s); break;
      case 'perturbStored': ex.perturbStored(layout.chunkW, zp, n, s); break;
      case 'perturb2Stored': ex.perturb2Stored(layout.chunkW, zp, n, off, s, op.keyB, b); break;
      default: throw new Error('unknown pass ' + op.kind);
    }
    part.set(scratch.subarray(0, n));
    start = end;
  }
}
// segments: null (the whole range) or [start, end, multiplier] triples (a shaped pass, tensor by tensor).
function pass(op, w, segments) {
  if (initError) throw initError;
  if (segments === null) return passRange(op, w, 0, w.length, 1);
  for (let i = 0; i < segments.length; i += 3) if (segments[i + 2] !== 0) passRange(op, w, segments[i], segments[i + 1], segments[i + 2]);
}
// S over a piece of the weights: zeroed (unless added to), then every seed accumulated (exact integers:
// any grouping).
function sums(job, s) {
  if (initError) throw initError;
  if (!job.add) s.fill(0);
  const keyArea = new Uint32Array(ex.memory.buffer, layout.keys, layout.maxSeeds);
  const coeffArea = new Float64Array(ex.memory.buffer, layout.coeffs, layout.maxSeeds);
  const chunk = new Float64Array(ex.memory.buffer, layout.chunkS, layout.chunk);
  for (let j0 = 0; j0 < job.keys.length; j0 += layout.maxSeeds) {
    const m = Math.min(layout.maxSeeds, job.keys.length - j0);
    keyArea.set(job.keys.subarray(j0, j0 + m));
    coeffArea.set(job.coeffs.subarray(j0, j0 + m));
    for (let start = 0; start < s.length; start += layout.chunk) {
      const part = s.subarray(start, Math.min(s.length, start + layout.chunk));
      chunk.set(part);
      ex.accumulate(layout.chunkS, part.length, job.offset + start, layout.keys, layout.coeffs, m);
      part.set(chunk.subarray(0, part.length));
    }
  }
}
port.on('message', ({ op, segments, sumsJob, rank1Jobs, add, buffer }) => {
  let error;
  try {
    if (rank1Jobs) rank1Sums(rank1Jobs, add, new Float64Array(buffer));
    else if (sumsJob) sums(sumsJob, new Float64Array(buffer));
    else pass(op, new Float32Array(buffer), segments);
  } catch (e) {
    error = String((e && e.stack) || e);
  }
  port.postMessage({ buffer, error }, [buffer]);
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
});
`;

/** How long a pass may take before the worker is taken for dead: generous, passes run at ~1–2 ns/param. */
function passDeadlineMs(length: number): number {
  return Math.max(60_000, length * 1e-4);
}

export class PassWorker {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly signal = new Int32Array(new SharedArrayBuffer(4));
  private failure: Error | null = null;

  /**
   * A worker for the range of `length` parameters from global index `offset`, with a z store for its
   * first `stored` parameters (true: all, false: none; else a multiple of the kernels' 8,192-element chunk).
   */
  constructor(
    private readonly offset: number,
    private readonly length: number,
    zStore: boolean | number = true,
  ) {
    const stored = zStore === true ? length : zStore === false ? 0 : zStore;
    if (stored !== length && stored % LAYOUT.chunk !== 0) throw new RangeError(`a worker's partial z store must be a multiple of ${LAYOUT.chunk} parameters`);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { module: kernelModule(), rank1: rank1Module(), table: ZQ, offset, length: stored, port: port2, signal: this.signal, layout: LAYOUT },
      transferList: [port2],
    });
    this.worker.on('error', (e) => (this.failure = e));
    this.worker.unref(); // an undisposed set must not keep the process alive
  }

  /**
   * Runs `op` over `w` (the whole of its own ArrayBuffer, which is moved to the worker and detached
   * here) while the caller works on something else; finish() returns the weights in a new array.
   */
  start(op: PassOp, w: Float32Array, segments: readonly Segment[] | null = null): void {
    if (this.failure) throw this.failure;
    const buffer = w.buffer;
    if (!(buffer instanceof ArrayBuffer) || w.length !== this.length || w.byteOffset !== 0 || buffer.byteLength !== w.byteLength) {
      throw new Error("a worker pass needs the range's own whole ArrayBuffer");
    }
    Atomics.store(this.signal, 0, 0);
    const flat = segments === null ? null : Float64Array.from(segments.flatMap((g) => [g.start, g.end, g.multiplier]));
    this.port.postMessage({ op: scaled(op), segments: flat, buffer }, [buffer]);
  }

  /** Blocks until the pass started by start() is done; rethrows the worker's error after the weights are back. */
  finish(): Float32Array {
    const reply = this.reply(passDeadlineMs(this.length), `a pass over ${this.length} parameters at ${this.offset}; those weights are lost`);
    const w = new Float32Array(reply.buffer);
    if (reply.error !== undefined) throw new WorkerPassError(reply.error, w);
    return w;
  }

  /**
   * Starts computing S = Σ_j coeffs[j]·Zq_j over global indices offset .. offset + out.length − 1 into
   * `out` (the whole of its own ArrayBuffer, moved to the worker); finishSums() returns it. With `add`,
   * the seeds are added to the values `out` holds (S read back from its file) instead.
   */
  startSums(keys: Uint32Array, coeffs: Float64Array, offset: number, out: Float64Array, add = false): void {
    if (this.failure) throw this.failure;
    if (!(out.buffer instanceof ArrayBuffer) || out.byteOffset !== 0 || out.buffer.byteLength !== out.byteLength)
      throw new Error("a worker's sums need their own whole ArrayBuffer");
    Atomics.store(this.signal, 0, 0);
    this.port.postMessage({ sumsJob: { keys, coeffs, offset, add }, buffer: out.buffer }, [out.buffer]);
  }

  /**
   * startSums for a piece of one rank-1 matrix: S gains every job's seeds (rank1-wasm.ts), their factors
   * hashed by the caller. finishSums() returns it.
   */
  startRank1Sums(jobs: readonly Rank1SumsJob[], out: Float64Array, add = false): void {
    if (this.failure) throw this.failure;
    if (!(out.buffer instanceof ArrayBuffer) || out.byteOffset !== 0 || out.buffer.byteLength !== out.byteLength)
      throw new Error("a worker's sums need their own whole ArrayBuffer");
    Atomics.store(this.signal, 0, 0);
    this.port.postMessage({ rank1Jobs: jobs, add, buffer: out.buffer }, [out.buffer]);
  }

  finishSums(seeds: number, length: number): Float64Array {
    const reply = this.reply(passDeadlineMs(length) * Math.max(1, seeds), `the sums of ${seeds} seeds over ${length} parameters`);
    if (reply.error !== undefined) throw new Error(`perturbation worker: ${reply.error}`);
    return new Float64Array(reply.buffer);
  }

  private reply(deadlineMs: number, what: string): PassReply {
    const deadline = performance.now() + deadlineMs;
    while (Atomics.wait(this.signal, 0, 0, 1000) === 'timed-out') {
      if (performance.now() > deadline) {
        this.dispose();
        throw new Error(`the perturbation worker did not finish ${what}`);
      }
    }
    const received = receiveMessageOnPort(this.port);
    if (!received) throw new Error('the perturbation worker signalled without replying');
    return received.message as PassReply;
  }

  dispose(): void {
    this.port.close();
    void this.worker.terminate();
  }
}

/** A failed worker pass; the weights came back (as they were when the pass stopped) and are in `weights`. */
export class WorkerPassError extends Error {
  constructor(
    message: string,
    readonly weights: Float32Array,
  ) {
    super(`perturbation worker: ${message}`);
  }
}

function scaled(op: PassOp): ScaledPass {
  switch (op.kind) {
    case 'perturb':
    case 'perturbStore':
      return { kind: op.kind, key: op.key, s: tableScale(op.s), keyB: 0, b: 0 };
    case 'perturbStored':
      return { kind: op.kind, key: op.key, s: tableScale(op.s), keyB: 0, b: 0 };
    case 'perturb2':
      return { kind: op.kind, key: op.keyA, s: tableScale(op.a), keyB: op.keyB, b: tableScale(op.b) };
    case 'perturb2Stored':
      return { kind: op.kind, key: op.keyA, s: tableScale(op.a), keyB: op.keyB, b: tableScale(op.b) };
  }
}
