// Weights that stay on a WebGPU device between runs (docs/gpu.md). The ParameterSet on the host stays the
// exact replica (w0 and the accumulator S, rebuilt on the CPU by the exact kernels); its span is uploaded
// once whenever it changes (at a round boundary) and kept as a device tensor. Every ZO pass is a run of the
// perturbation graph on the device, whose output (a new device buffer) replaces the input (disposed), and
// the forward takes the current device tensor as its weights input. Per step, only seed keys, scales,
// token ids and per-token losses cross the bus: BusCounter counts those bytes.
import { createHash } from 'node:crypto';
import * as ort from 'onnxruntime-node';
import type { TokenBatch } from '../data/batches';
import type { LoadedModel } from '../model/load';
import { IGNORE_INDEX, rewriteForTraining, type TrainingGraph } from '../model/rewrite';
import type { LossResult } from './session';
import type { ParameterSet } from '../zo/parameters';
import { DataType, encodeGraph, int64Tensor, node, singleNodeGraph, valueInfo } from '../model/onnx';
import { DEVICE_NAMES, rewriteForDevice, type DeviceShape } from './device-graph';
import type { ForwardPrecision } from '../../contracts/trainer-payloads';
import { float16ProductsUnsupported } from './float16-products';
import { buildDevicePassGraph, deviceOnlyOptions, devicePassFeeds, PERTURBATION_NAMES, type SeedSource } from './perturbation-graph';
import type { ProviderReport } from './providers';
import { buildRank1PassGraph, RANK1_PASS_NAMES, type Rank1Source } from './rank1-pass-graph';
import { tableScale } from '../zo/kernels';
import type { CompactLayout } from '../zo/rank1-compact';
import { keyByteFeeds } from './arithmetic-hash';

/** Bytes that crossed between host and device, as onnxruntime's inputs and outputs in host memory. */
export class BusCounter {
  hostToDevice = 0;
  deviceToHost = 0;
  runs = 0;
  /** Runs with an output on the host: each waits for the device (a round trip). */
  readBacks = 0;
  /** Full copies of the weights (uploads of the replica, read-backs). */
  weightTransfers = 0;

  reset(): void {
    this.hostToDevice = this.deviceToHost = this.runs = this.readBacks = this.weightTransfers = 0;
  }

  snapshot(): { hostToDevice: number; deviceToHost: number; runs: number; readBacks: number; weightTransfers: number } {
    return {
      hostToDevice: this.hostToDevice,
      deviceToHost: this.deviceToHost,
      runs: this.runs,
      readBacks: this.readBacks,
      weightTransfers: this.weightTransfers,
    };
  }

  /** Counts a run's host-side inputs and outputs (device tensors cross nothing). */
  count(feeds: Record<string, ort.Tensor>, outputs: Record<string, ort.Tensor>): void {
    this.runs++;
    for (const t of Object.values(feeds)) if (t.location === 'cpu') this.hostToDevice += byteSize(t);
    const host = Object.values(outputs).filter((t) => t.location === 'cpu');
    for (const t of host) this.deviceToHost += byteSize(t);
    if (host.length > 0) this.readBacks++;
  }
}

function byteSize(t: ort.Tensor): number {
  const data = t.data as { byteLength?: number };
  return data.byteLength ?? 0;
}

export const DEVICE_PROVIDER = 'webgpu';

/** y = x[0:1]: waits for the device's work on x and brings back 4 bytes (DeviceWeights.sync). */
function firstElementGraph(length: number): Uint8Array {
  return encodeGraph({
    name: 'first',
    node: [node('Slice', ['x', 'start', 'end'], ['y'], 'first')],
    initializer: [int64Tensor('start', [0]), int64Tensor('end', [1])],
    input: [valueInfo('x', DataType.FLOAT, [length])],
    output: [valueInfo('y', DataType.FLOAT, [1])],
  });
}

function deviceSessionOptions(onDevice: boolean): ort.InferenceSession.SessionOptions {
  return {
    // Every device graph has static shapes: 'simple' reuses a released buffer for a request of its exact
    // size, where the default 'bucket' rounds sizes up (tried by hand on lavapipe at 124M parameters: about
    // two weights' worth less held after a step's passes, at the same speed).
    executionProviders: [{ name: DEVICE_PROVIDER, storageBufferCacheMode: 'simple' }],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...deviceOnlyOptions(DEVICE_PROVIDER),
    ...(onDevice ? { preferredOutputLocation: 'gpu-buffer' as const } : {}),
  };
}

/**
 * The z of the last seed a pass hashed, kept on the device for the step's next passes of that seed (its
 * −2εz pass and the next step's restore/update), so a step hashes each seed once.
 */
class KeptZ {
  private kept: { readonly key: number; readonly values: ort.Tensor } | null = null;

  /** Where each seed of a pass comes from: the kept z for its key, else its hash. */
  sources(keys: readonly number[]): SeedSource[] {
    return keys.map((key) => (this.kept?.key === key ? 'cached' : 'hash'));
  }

  /** The kept values (a pass reads them for its 'cached' seeds). */
  get values(): ort.Tensor {
    if (this.kept === null) throw new Error('no z is kept on the device');
    return this.kept.values;
  }

  /**
   * Before a run: a run that hashes its seed and reads no kept z replaces the kept one, so that one is freed
   * first and is never live beside the run's buffers.
   */
  beforeRun(sources: readonly SeedSource[]): void {
    if (sources.at(-1) === 'hash' && !sources.includes('cached')) this.dispose();
  }

  /** After a run: its z output (when it returned one) is kept for its last seed. */
  afterRun(key: number, z: ort.Tensor | undefined): void {
    if (!z) return;
    this.dispose();
    this.kept = { key, values: z };
  }

  dispose(): void {
    this.kept?.values.dispose();
    this.kept = null;
  }
}

/** Above this many parameters a rank-1 pass keeps no z (memory over launches: see DeviceWeightsOptions). */
export const LEAN_RANK1_ABOVE = 2 ** 28;

export interface DeviceWeightsOptions {
  /**
   * Whether a rank-1 pass keeps its expanded z on the device for the step's next passes. Kept, a step
   * expands each seed once and a run holds 4× the weights; not kept, every pass expands its seed again
   * (one more hash of the compact z, a rows Gather and a Mul) and a run holds 3×. Default: kept up to
   * LEAN_RANK1_ABOVE parameters (1 GiB of weights), where memory starts to matter more than launches.
   */
  readonly keepRank1Z?: boolean;
}

/** The weights of a ParameterSet, resident on the WebGPU device. */
export class DeviceWeights {
  /**
   * The replica as uploaded, until a pass consumes it (its output replaces it: the device never holds the
   * replica beside the working weights), and the host version it came from.
   */
  private replica: ort.Tensor | null = null;
  private replicaVersion = -1;
  /** The working weights after local passes (null: the replica). */
  private local: ort.Tensor | null = null;
  private released = false;
  private fence: ort.InferenceSession | null = null;
  /**
   * The table values fl32(Zq[index]) of the last hashed seed. They depend on the key and the span only (not
   * on the weights or the shape), so they outlive a replica change.
   */
  private readonly z = new KeptZ();
  /** Pass sessions by seed sources ('h', 'ch', …; see buildDevicePassGraph), for isotropic passes. */
  private readonly passes = new Map<string, ort.InferenceSession>();
  /** Shaped passes (a non-isotropic shape): their sessions and the multipliers on the device, for one shape. */
  private shaped: { readonly shape: string; readonly passes: Map<string, ort.InferenceSession>; readonly multipliers: ort.Tensor } | null = null;
  /**
   * Rank-1 passes: the compact layout for the current shape, its sessions by seed sources, and the last
   * expanded seed's z (the shape folded in), kept like the iid z so a step expands each seed once.
   */
  private rank1: {
    readonly shape: string;
    readonly layout: CompactLayout;
    readonly sessions: Map<string, ort.InferenceSession>;
    readonly z: KeptZ;
  } | null = null;

  private constructor(
    readonly params: ParameterSet,
    private readonly upload: ort.InferenceSession,
    private readonly download: ort.InferenceSession,
    readonly counter: BusCounter,
    private readonly options: DeviceWeightsOptions,
  ) {}

  /** The seed sources of the pass sessions created with the weights: every run a step makes (one seed a run). */
  static readonly STEP_PASSES: readonly (readonly SeedSource[])[] = [['hash'], ['cached']];

  static async create(params: ParameterSet, counter = new BusCounter(), options: DeviceWeightsOptions = {}): Promise<DeviceWeights> {
    const sessions: ort.InferenceSession[] = [];
    try {
      for (const onDevice of [true, false])
        sessions.push(await ort.InferenceSession.create(singleNodeGraph('copy', 'Identity', ['x'], params.indexSpan), deviceSessionOptions(onDevice)));
      const weights = new DeviceWeights(params, sessions[0], sessions[1], counter, options);
      // The passes a step runs are created now, so a device that cannot run them fails here.
      for (const sources of DeviceWeights.STEP_PASSES) sessions.push(await weights.passSession(sources, weights.passes, false));
      return weights;
    } catch (e) {
      for (const s of sessions) await s.release();
      throw e;
    }
  }

  private async passSession(sources: readonly SeedSource[], cache: Map<string, ort.InferenceSession>, shaped: boolean): Promise<ort.InferenceSession> {
    const name = sources.map((x) => x[0]).join('');
    let session = cache.get(name);
    if (!session) {
      session = await ort.InferenceSession.create(buildDevicePassGraph(sources, shaped), deviceSessionOptions(true));
      cache.set(name, session);
    }
    return session;
  }

  get length(): number {
    return this.params.indexSpan;
  }

  /** The weights to run with: the local ones, else the replica (uploaded first if the host's changed or a pass consumed it). */
  async current(): Promise<ort.Tensor> {
    this.checkOpen();
    if (this.params.version !== this.replicaVersion) {
      // The host changed (coefficients applied, or its own passes): local device work is discarded.
      this.dropLocal();
      this.replica?.dispose();
      this.replica = null;
    }
    if (this.local === null && this.replica === null) {
      const host = this.params.spanData();
      const feeds = { x: new ort.Tensor('float32', host, [host.length]) };
      const out = await this.upload.run(feeds);
      this.counter.count(feeds, out);
      this.counter.weightTransfers++;
      this.replica = out.y;
      this.replicaVersion = this.params.version;
    }
    return this.local ?? (this.replica as ort.Tensor);
  }

  /** w += s·z(key) on the device. */
  async perturb(key: number, s: number): Promise<void> {
    await this.pass([{ key, s }]);
  }

  /**
   * w += a·z(keyA) then + b·z(keyB) (restore/update and the next +εz): one run per seed, the same nodes as
   * one run of both, so the same bits and device work. Apart, the kept z, the first step and its output are
   * no longer live beside the second seed's buffers: the pass's peak falls by two weight-sized buffers.
   */
  async perturb2(keyA: number, a: number, keyB: number, b: number): Promise<void> {
    await this.pass([{ key: keyA, s: a }]);
    await this.pass([{ key: keyB, s: b }]);
  }

  /**
   * For a non-isotropic shape: the shaped pass sessions and the span's multipliers, uploaded once per shape
   * (the multiplier of each index, so a pass stays one run over the whole span); null when isotropic.
   */
  private async shapedPasses(): Promise<DeviceWeights['shaped']> {
    const shape = this.params.shape;
    if (shape === 'isotropic') return null;
    if (this.shaped?.shape === shape) return this.shaped;
    await this.dropShaped();
    const span = this.params.shapeSpan() as Float32Array;
    const feeds = { x: new ort.Tensor('float32', span, [span.length]) };
    const out = await this.upload.run(feeds);
    this.counter.count(feeds, out);
    this.shaped = { shape, passes: new Map(), multipliers: out.y };
    return this.shaped;
  }

  private async dropShaped(): Promise<void> {
    const shaped = this.shaped;
    this.shaped = null;
    if (shaped === null) return;
    shaped.multipliers.dispose();
    for (const s of shaped.passes.values()) await s.release();
  }

  /** The sources of a pass: a seed whose z is on the device is read, the others are hashed. */
  passSources(keys: readonly number[]): SeedSource[] {
    return this.z.sources(keys);
  }

  private async pass(terms: { key: number; s: number }[]): Promise<void> {
    if (this.params.generator === 'rank1') return this.rank1Pass(terms);
    const shaped = await this.shapedPasses();
    const sources = this.passSources(terms.map((t) => t.key));
    const session = await this.passSession(sources, shaped?.passes ?? this.passes, shaped !== null);
    this.z.beforeRun(sources);
    const input = await this.current();
    const feeds = devicePassFeeds(sources, this.length, terms);
    feeds[PERTURBATION_NAMES.weights] = input;
    if (shaped) feeds[PERTURBATION_NAMES.multiplier] = shaped.multipliers;
    sources.forEach((source, k) => {
      if (source === 'cached') feeds[PERTURBATION_NAMES.cachedZ(k)] = this.z.values;
    });
    const out = await session.run(feeds);
    this.counter.count(feeds, out);
    this.replaceInput(input, out[PERTURBATION_NAMES.output]);
    this.z.afterRun(terms[terms.length - 1].key, out[PERTURBATION_NAMES.zOutput]);
  }

  /**
   * A rank-1 pass: each seed's compact z (its factors and the other indices' values, the shape folded in)
   * hashed from its key and expanded on the device. Per seed the bus carries the key's bytes and a scale.
   */
  private async rank1Pass(terms: { key: number; s: number }[]): Promise<void> {
    const shape = this.params.shape;
    if (this.rank1?.shape !== shape) {
      await this.dropRank1();
      this.rank1 = { shape, layout: this.params.rank1Layout() as CompactLayout, sessions: new Map(), z: new KeptZ() };
    }
    const rank1 = this.rank1;
    const keepZ = this.keepsRank1Z();
    const sources: Rank1Source[] = rank1.z.sources(terms.map((t) => t.key));
    const name = `${sources.join(',')}${keepZ ? '' : ',no-kept-z'}`;
    let session = rank1.sessions.get(name);
    if (!session) {
      session = await ort.InferenceSession.create(buildRank1PassGraph(rank1.layout, sources, keepZ), deviceSessionOptions(true));
      rank1.sessions.set(name, session);
    }
    rank1.z.beforeRun(sources);
    const input = await this.current();
    const feeds: Record<string, ort.Tensor> = { [RANK1_PASS_NAMES.weights]: input };
    terms.forEach((t, k) => {
      if (sources[k] === 'cached') feeds[RANK1_PASS_NAMES.cachedZ(k)] = rank1.z.values;
      else Object.assign(feeds, keyByteFeeds(k, t.key));
      feeds[RANK1_PASS_NAMES.scale(k)] = new ort.Tensor('float32', Float32Array.of(tableScale(t.s)), [1]);
    });
    const out = await session.run(feeds);
    this.counter.count(feeds, out);
    this.replaceInput(input, out[RANK1_PASS_NAMES.output]);
    rank1.z.afterRun(terms[terms.length - 1].key, out[RANK1_PASS_NAMES.zOutput]);
  }

  /** Whether rank-1 passes keep their z (DeviceWeightsOptions.keepRank1Z). */
  keepsRank1Z(): boolean {
    return this.options.keepRank1Z ?? this.length <= LEAN_RANK1_ABOVE;
  }

  /**
   * Ping-pong: a pass's output replaces its input, which goes back to onnxruntime's buffer cache; the replica
   * too (a reset uploads it again: one upload, where holding it would cost the device a weights' worth).
   */
  private replaceInput(input: ort.Tensor, output: ort.Tensor): void {
    if (input === this.replica) this.replica = null;
    input.dispose();
    this.local = output;
  }

  private async dropRank1(): Promise<void> {
    const rank1 = this.rank1;
    this.rank1 = null;
    rank1?.z.dispose();
    for (const s of rank1?.sessions.values() ?? []) await s.release();
  }

  /** Back to the replica: local passes are dropped (the next run uploads the replica if a pass consumed it). */
  resetToBase(): void {
    this.dropLocal();
    this.params.resetToBase();
  }

  /** The device's current weights, read back through a run with a host output (the whole span). */
  async read(): Promise<Float32Array> {
    const input = await this.current();
    const feeds = { x: input };
    const out = await this.download.run(feeds);
    this.counter.count(feeds, out);
    this.counter.weightTransfers++;
    return out.y.data as Float32Array;
  }

  /**
   * Waits until the device has finished the work queued on the current weights (a run reading one of
   * them back): a run with device outputs may return before the device is done. For timing.
   */
  async sync(): Promise<void> {
    const input = await this.current();
    this.fence ??= await ort.InferenceSession.create(firstElementGraph(this.length), deviceSessionOptions(false));
    const feeds = { x: input };
    const out = await this.fence.run(feeds);
    this.counter.count(feeds, out);
  }

  /** SHA-256 of the device's current weights, computed as ParameterSet.digest() (tensors in offset order). */
  async digest(): Promise<string> {
    return spanDigest(await this.read(), this.params.tensors);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.dropLocal();
    this.replica?.dispose();
    this.replica = null;
    await this.dropShaped();
    await this.dropRank1();
    this.z.dispose();
    for (const s of [...this.passes.values(), this.upload, this.download, this.fence]) await s?.release();
    this.passes.clear();
  }

  private dropLocal(): void {
    this.local?.dispose();
    this.local = null;
  }

  private checkOpen(): void {
    if (this.released) throw new Error('the device weights were released');
  }
}

/** ParameterSet.digest() of a span copy. */
export function spanDigest(span: Float32Array, tensors: readonly { offset: number; size: number }[]): string {
  const hash = createHash('sha256');
  for (const t of tensors) hash.update(new Uint8Array(span.buffer, span.byteOffset + t.offset * 4, t.size * 4));
  return hash.digest('hex');
}

export interface DeviceModelOptions {
  /** Longest sequence a session is made for (the model's context); shapes are padded up to buckets below it. */
  readonly maxSequence?: number;
  /** Most sessions (shapes) kept; the least recently used is released beyond it. Default 6. */
  readonly maxSessions?: number;
  /** Products in float16 (trainer/device/float16-products.ts) or as the model has them. Default float32. */
  readonly forwardPrecision?: ForwardPrecision;
}

export const nextPow2 = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/**
 * The padded size of a batch or sequence dimension: at least `min`, then half-octave steps (2^k and
 * 1.5·2^k: 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, …). At most 50% padding where powers of
 * two waste up to 100% per dimension, for two shapes (sessions) per octave instead of one.
 */
export function bucketLength(n: number, min = 1): number {
  const v = Math.max(n, min, 1);
  const pow = nextPow2(v);
  const between = (pow / 4) * 3;
  return Number.isInteger(between) && between >= v && between >= min ? between : pow;
}

/** The products' precision the device gives for `requested`, and why not float16 where it was asked and is not. */
export async function deviceForwardPrecision(requested: ForwardPrecision): Promise<{ readonly used: ForwardPrecision; readonly note: string | null }> {
  if (requested === 'float32') return { used: 'float32', note: null };
  const why = await float16ProductsUnsupported(deviceSessionOptions(false));
  return why === null ? { used: 'float16', note: null } : { used: 'float32', note: `float16 forwards were asked for; float32 is used: ${why}` };
}

/**
 * The forward on the device: a session per padded shape (batch and sequence ≥ 16 up to their
 * bucketLength, the sequence capped at maxSequence), created on first use and fed the DeviceWeights'
 * current tensor.
 * Padding rows and positions carry mask 0 and no target: they change no real token's loss or logits
 * (right padding, causal attention) beyond float rounding.
 */

export class DeviceModelSession {
  private readonly sessions = new Map<string, ort.InferenceSession>();
  /** Read-back sessions by the number of tensors they bring back. */
  private readonly readers = new Map<number, ort.InferenceSession>();
  readonly executionProvider = DEVICE_PROVIDER;
  private released = false;
  private report: ProviderReport;
  private readonly model: TrainingGraph;

  /** `model`: a loaded model (rewritten here) or its training graph. */
  constructor(
    model: LoadedModel | TrainingGraph,
    readonly weights: DeviceWeights,
    private readonly options: DeviceModelOptions = {},
  ) {
    this.model = 'bytes' in model ? model : rewriteForTraining(model);
    this.report = { requested: DEVICE_PROVIDER, used: DEVICE_PROVIDER, attempts: [{ name: DEVICE_PROVIDER, outcome: 'used' }] };
  }

  get providerReport(): ProviderReport {
    return this.report;
  }

  /** Takes the report of the selection the engine made (see ModelSession.adoptReport). */
  adoptReport(report: ProviderReport): void {
    if (report.used !== DEVICE_PROVIDER) throw new Error(`report says ${report.used}, the session runs on ${DEVICE_PROVIDER}`);
    this.report = report;
  }

  /** The padded shape a batch×seq run uses. */
  shapeFor(batch: number, seq: number): DeviceShape {
    const cap = this.options.maxSequence ?? Infinity;
    const padded = Math.min(bucketLength(seq, 16), cap);
    return { batch: bucketLength(batch), seq: Math.max(seq, padded) };
  }

  /** Creates the session for a shape now (checks that the whole model runs on the device; compiles nothing yet). */
  async prepare(batch: number, seq: number): Promise<void> {
    await this.session(this.shapeFor(batch, seq));
  }

  /**
   * The session for a shape and a fetch: token losses stay on the device until read (lossPair reads a
   * step's two in one wait), last-position logits come to the host. Two sessions, because onnxruntime-node
   * 1.30 places a fetched subset of outputs by position in a per-output location map, not by name.
   */
  private async session(shape: DeviceShape, fetch: string = DEVICE_NAMES.tokenLoss): Promise<ort.InferenceSession> {
    if (this.released) throw new Error('the device session was released');
    const onDevice = fetch === DEVICE_NAMES.tokenLoss;
    const key = `${shape.batch}x${shape.seq}${onDevice ? '' : ':logits'}`;
    let s = this.sessions.get(key);
    if (s) {
      this.sessions.delete(key);
      this.sessions.set(key, s);
      return s;
    }
    s = await ort.InferenceSession.create(
      rewriteForDevice(this.model, this.weights.params, shape, this.options.forwardPrecision),
      deviceSessionOptions(onDevice),
    );
    this.sessions.set(key, s);
    const max = this.options.maxSessions ?? 6;
    while (this.sessions.size > max) {
      const [oldest, old] = this.sessions.entries().next().value as [string, ort.InferenceSession];
      this.sessions.delete(oldest);
      await old.release();
    }
    return s;
  }

  private async run(
    inputIds: BigInt64Array,
    attentionMask: BigInt64Array,
    labels: BigInt64Array | null,
    batch: number,
    seq: number,
    fetch: string,
  ): Promise<{ output: ort.Tensor; shape: DeviceShape }> {
    const shape = this.shapeFor(batch, seq);
    const { batch: B, seq: T } = shape;
    const session = await this.session(shape, fetch);
    const ids = new Int32Array(B * T);
    const mask = new Int32Array(B * T);
    const targets = new Int32Array(B * T);
    const last = new Int32Array(B);
    const ignore = BigInt(IGNORE_INDEX);
    for (let b = 0; b < B; b++) {
      let length = 0;
      for (let t = 0; b < batch && t < seq; t++) {
        const i = b * seq + t;
        const o = b * T + t;
        ids[o] = Number(inputIds[i]);
        mask[o] = Number(attentionMask[i]);
        length += mask[o];
        if (labels && labels[i] !== ignore) targets[o] = Number(labels[i]);
      }
      last[b] = b * T + Math.max(0, length - 1);
    }
    const io = this.model.io;
    const feeds: Record<string, ort.Tensor> = {
      [io.inputIds.name]:
        io.inputIds.type === 'int64' ? new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [B, T]) : new ort.Tensor('int32', ids, [B, T]),
      // The device graph takes the mask as int32 (device-graph.ts).
      [io.attentionMask.name]: new ort.Tensor('int32', mask, [B, T]),
      [DEVICE_NAMES.targets]: new ort.Tensor('int32', targets, [B, T, 1]),
      [DEVICE_NAMES.lastIndex]: new ort.Tensor('int32', last, [B]),
      [DEVICE_NAMES.span]: await this.weights.current(),
    };
    if (io.positionIds) {
      const pos = new Int32Array(B * T);
      for (let i = 0; i < pos.length; i++) pos[i] = i % T;
      feeds[io.positionIds.name] =
        io.positionIds.type === 'int64' ? new ort.Tensor('int64', BigInt64Array.from(pos, BigInt), [B, T]) : new ort.Tensor('int32', pos, [B, T]);
    }
    const out = await session.run(feeds, [fetch]);
    this.weights.counter.count(feeds, out);
    return { output: out[fetch], shape };
  }

  /** Device tensors brought to the host in one run (one wait for the device), then released there. */
  private async readBack(tensors: readonly ort.Tensor[]): Promise<Float32Array[]> {
    let session = this.readers.get(tensors.length);
    if (!session) {
      session = await ort.InferenceSession.create(identitiesGraph(tensors.length), deviceSessionOptions(false));
      this.readers.set(tensors.length, session);
    }
    const feeds = Object.fromEntries(tensors.map((t, i) => [`x${i}`, t]));
    try {
      const out = await session.run(feeds);
      this.weights.counter.count(feeds, out);
      return tensors.map((_, i) => out[`y${i}`].data as Float32Array);
    } finally {
      for (const t of tensors) t.dispose();
    }
  }

  /** Masked next-token loss of a batch: per-token float32 losses from the device, summed here in float64. */
  async lossSum(b: TokenBatch): Promise<LossResult> {
    const { output, shape } = await this.run(b.inputIds, b.attentionMask, b.labels, b.batch, b.seq, DEVICE_NAMES.tokenLoss);
    const [data] = await this.readBack([output]);
    return sumTokenLosses(b, data, shape);
  }

  /**
   * A ZO step's two losses with one wait for the device: the forward, then `between` (the −2εz pass),
   * then the second forward are queued, and both losses come back in one read. The same runs as two
   * lossSum calls, so the same bits; the device never idles while the host reads the first.
   */
  async lossPair(b: TokenBatch, between: () => Promise<void>): Promise<[LossResult, LossResult]> {
    const first = await this.run(b.inputIds, b.attentionMask, b.labels, b.batch, b.seq, DEVICE_NAMES.tokenLoss);
    let second: { output: ort.Tensor; shape: DeviceShape };
    try {
      await between();
      second = await this.run(b.inputIds, b.attentionMask, b.labels, b.batch, b.seq, DEVICE_NAMES.tokenLoss);
    } catch (e) {
      first.output.dispose();
      throw e;
    }
    const [a, c] = await this.readBack([first.output, second.output]);
    return [sumTokenLosses(b, a, first.shape), sumTokenLosses(b, c, second.shape)];
  }

  /** Logits [batch, vocab] at each row's last attended position (rows right-padded). */
  async lastLogits(inputIds: BigInt64Array, attentionMask: BigInt64Array, batch: number, seq: number): Promise<Float32Array> {
    const { output, shape } = await this.run(inputIds, attentionMask, null, batch, seq, DEVICE_NAMES.lastLogits);
    const data = output.data as Float32Array;
    const vocab = data.length / shape.batch;
    return data.subarray(0, batch * vocab);
  }

  /** Weights live on the device; a host map has nothing to bind (kept for the ModelSession interface). */
  bindWeights(): void {}

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    for (const s of [...this.sessions.values(), ...this.readers.values()]) await s.release();
    this.sessions.clear();
    this.readers.clear();
  }
}

/** Sums a batch's per-token losses (padded to `shape` on the device) over its targets, in float64. */
function sumTokenLosses(b: TokenBatch, data: Float32Array, shape: DeviceShape): LossResult {
  const ignore = BigInt(IGNORE_INDEX);
  const perExample = new Float64Array(b.batch);
  let lossSum = 0;
  let tokens = 0;
  for (let r = 0; r < b.batch; r++) {
    let row = 0;
    for (let t = 0; t < b.seq; t++) {
      if (b.labels[r * b.seq + t] === ignore) continue;
      row += data[r * shape.seq + t];
      tokens++;
    }
    perExample[r] = row;
    lossSum += row;
  }
  return { lossSum, tokens, perExample };
}

/** x0…x(k−1) → y0…y(k−1), any float32 shape: a device session with host outputs brings device tensors back. */
function identitiesGraph(k: number): Uint8Array {
  return encodeGraph({
    name: `read_${k}`,
    node: Array.from({ length: k }, (_, i) => node('Identity', [`x${i}`], [`y${i}`], `y${i}`)),
    input: Array.from({ length: k }, (_, i) => valueInfo(`x${i}`, DataType.FLOAT, null)),
    output: Array.from({ length: k }, (_, i) => valueInfo(`y${i}`, DataType.FLOAT, null)),
  });
}
