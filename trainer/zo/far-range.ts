// The upper range of the weights when a ParameterSet splits its passes over two threads: a plain
// ArrayBuffer (onnxruntime reads it zero-copy) that a worker perturbs while the calling thread perturbs
// the resident range. Without a worker (nothing bound to follow the moved arrays) the same passes run
// here, with this range's z store in a second WebAssembly instance.
import { WasmKernels } from './kernels-wasm';
import { PassWorker, WorkerPassError } from './pass-worker';
import { LocalSpanPasses, StoredSeed, type PassRequest, type Segment } from './span-passes';

export class FarRange {
  /** The range's weights; a new array after every worker pass (the buffer went to the worker and back). */
  data: Float32Array;
  private worker: { readonly thread: PassWorker; readonly stored: StoredSeed } | null = null;
  private local: LocalSpanPasses | null = null;
  private lost = false;
  /** Null: whole-range passes (isotropic); else the range's tensors with their shape multipliers. */
  private segments: readonly Segment[] | null = null;

  constructor(
    /** Global index of the range's first parameter. */
    readonly offset: number,
    length: number,
    /** How many of the range's first parameters keep the seed's Zq between passes (ParameterSetOptions.zStore). */
    readonly zStored: number,
  ) {
    this.data = new Float32Array(length);
  }

  /**
   * Applies `request` to this range and runs `alongside` (the other range's pass) meanwhile: in the worker
   * when `parallel`, else one after the other on this thread. Returns true when `data` was replaced.
   */
  /** Sets the range's shaped segments (relative to its start); the stored seed is forgotten. */
  setSegments(segments: readonly Segment[] | null): void {
    this.segments = segments;
    this.dispose();
  }

  run(request: PassRequest, parallel: boolean, alongside: () => void): boolean {
    if (this.lost) throw new Error('the weights of a failed worker pass are lost');
    if (!parallel) {
      alongside();
      this.localPasses().run(this.data, request);
      return false;
    }
    const { thread, stored } = this.startedWorker();
    const op = stored.plan(request);
    stored.begin(op);
    thread.start(op, this.data, this.segments);
    let failure: unknown = null;
    try {
      alongside();
    } catch (e) {
      failure = e;
    }
    try {
      this.data = thread.finish();
      stored.complete(op);
    } catch (e) {
      if (e instanceof WorkerPassError) this.data = e.weights;
      else this.lost = true; // the worker is gone, and the range's weights with it
      failure ??= e;
    }
    if (failure !== null) throw failure;
    return true;
  }

  /** The worker, started if need be, to compute S pieces beside the calling thread (it holds no weights then). */
  sumsWorker(): PassWorker {
    if (this.lost) throw new Error('the weights of a failed worker pass are lost');
    return this.startedWorker().thread;
  }

  dispose(): void {
    this.worker?.thread.dispose();
    this.worker = null;
    this.local = null;
  }

  private startedWorker(): { readonly thread: PassWorker; readonly stored: StoredSeed } {
    this.local = null; // its store is stale from now on; free its memory
    this.worker ??= { thread: new PassWorker(this.offset, this.data.length, this.zStored), stored: new StoredSeed(this.zStored > 0) };
    return this.worker;
  }

  private localPasses(): LocalSpanPasses {
    if (this.local === null) {
      this.worker?.thread.dispose();
      this.worker = null;
      const kernels = new WasmKernels();
      const zq = this.zStored > 0 ? (kernels.allocateResidentViews(0, this.zStored)?.zStore ?? null) : null;
      this.local = new LocalSpanPasses(kernels, this.offset, zq);
      this.local.segments = this.segments;
    }
    return this.local;
  }
}
