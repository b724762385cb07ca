// An onnxruntime-node session over the training graph: weights bound once as zero-copy float32
// tensors, loss and last-position logits computed in the graph.
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { createWithProviders, NoProviderError, type ProviderReport, type ProviderRequest } from './providers';
import { ModelError } from '../model/errors';
import type { LoadedModel } from '../model/load';
import { IGNORE_INDEX, TRAINING_NAMES, rewriteForTraining, type TrainingGraph } from '../model/rewrite';
import type { NamedIndexInput } from '../model/validate';

export interface ModelSessionOptions {
  /** Threads for one operator; default: the number of cores. */
  intraOpNumThreads?: number;
  /**
   * Providers tried in order, each on its own (first that creates a session wins): 'auto', a name, a comma
   * list or an array of those (see trainer/device/providers.ts); default 'cpu'.
   */
  executionProviders?: ProviderRequest;
}

export interface TokenBatch {
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  /** Already shifted (see nextTokenLabels); -100 = ignored. */
  labels: BigInt64Array;
  batch: number;
  seq: number;
}

export interface LossResult {
  /** Sum of the cross-entropy (nats) over the non-ignored labels. */
  lossSum: number;
  /** Number of non-ignored labels. */
  tokens: number;
  /** Per-row sums [batch]. */
  perExample: Float64Array;
}

export class ModelSession {
  private weightFeeds: Record<string, ort.Tensor> | null = null;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly graph: TrainingGraph,
    private report: ProviderReport,
  ) {}

  /** What is in use and, for each provider not used, why. */
  get providerReport(): ProviderReport {
    return this.report;
  }

  /** The provider in use ('cpu', 'cuda', 'webgpu', 'dml' or 'coreml'). */
  get executionProvider(): string {
    return this.report.used;
  }

  /**
   * Takes the report of a wider selection this session was created within (the engine tries the device
   * engine and host sessions in one order); the provider in use must be this session's.
   */
  adoptReport(report: ProviderReport): void {
    if (report.used !== this.report.used) throw new Error(`report says ${report.used}, the session runs on ${this.report.used}`);
    this.report = report;
  }

  /** Creates a session from a loaded model (rewritten here) or an already rewritten training graph. */
  static async create(model: LoadedModel | TrainingGraph, options: ModelSessionOptions = {}): Promise<ModelSession> {
    const graph = 'bytes' in model ? model : rewriteForTraining(model);
    const request = options.executionProviders ?? 'cpu';
    try {
      const { value: session, report } = await createWithProviders(request, (ep) =>
        ort.InferenceSession.create(graph.bytes, {
          graphOptimizationLevel: 'all',
          intraOpNumThreads: options.intraOpNumThreads ?? availableParallelism(),
          executionProviders: [ep],
          logSeverityLevel: 3,
        }),
      );
      return new ModelSession(session, graph, report);
    } catch (e) {
      if (e instanceof NoProviderError) throw new ModelError(graph.file, e.message);
      throw e;
    }
  }

  /**
   * Binds the weights (by weight name) for all later runs. The arrays are wrapped, not copied: mutate
   * them in place between runs. Rebind if an array is replaced (e.g. after WebAssembly memory grows).
   */
  bindWeights(weights: ReadonlyMap<string, Float32Array>): void {
    const feeds: Record<string, ort.Tensor> = {};
    for (const spec of this.graph.weights) {
      const data = weights.get(spec.name);
      const size = spec.dims.reduce((a, b) => a * b, 1);
      if (!data) throw new Error(`bindWeights: no array for weight '${spec.name}'`);
      if (data.length !== size) throw new Error(`bindWeights: '${spec.name}' has ${data.length} floats, expected ${size}`);
      if (typeof SharedArrayBuffer !== 'undefined' && data.buffer instanceof SharedArrayBuffer) {
        throw new Error(`bindWeights: '${spec.name}' is backed by a SharedArrayBuffer, which onnxruntime-node rejects`);
      }
      feeds[this.graph.weightInputs.get(spec.name) as string] = new ort.Tensor('float32', data, spec.dims);
    }
    this.weightFeeds = feeds;
  }

  /** Masked next-token loss of a batch; only the loss outputs are fetched. */
  async lossSum(b: TokenBatch): Promise<LossResult> {
    checkShape(b.labels, b, 'labels');
    const feeds = this.tokenFeeds(b.inputIds, b.attentionMask, b.batch, b.seq);
    feeds[TRAINING_NAMES.labels] = new ort.Tensor('int64', b.labels, [b.batch, b.seq]);
    const out = await this.session.run(feeds, [TRAINING_NAMES.lossSum, TRAINING_NAMES.perExample]);
    let tokens = 0;
    const ignore = BigInt(IGNORE_INDEX);
    for (let i = 0; i < b.labels.length; i++) if (b.labels[i] !== ignore) tokens++;
    return {
      lossSum: Number((out[TRAINING_NAMES.lossSum].data as Float64Array)[0]),
      tokens,
      perExample: Float64Array.from(out[TRAINING_NAMES.perExample].data as Float64Array),
    };
  }

  /** Logits [batch, vocab] at each row's last attended position (rows right-padded). */
  async lastLogits(inputIds: BigInt64Array, attentionMask: BigInt64Array, batch: number, seq: number): Promise<Float32Array> {
    const feeds = this.tokenFeeds(inputIds, attentionMask, batch, seq);
    // The loss branch is not fetched, so it is not computed; labels must still be fed.
    feeds[TRAINING_NAMES.labels] = new ort.Tensor('int64', new BigInt64Array(batch * seq).fill(BigInt(IGNORE_INDEX)), [batch, seq]);
    const out = await this.session.run(feeds, [TRAINING_NAMES.lastLogits]);
    return out[TRAINING_NAMES.lastLogits].data as Float32Array;
  }

  async release(): Promise<void> {
    this.weightFeeds = null;
    await this.session.release();
  }

  private tokenFeeds(inputIds: BigInt64Array, attentionMask: BigInt64Array, batch: number, seq: number): Record<string, ort.Tensor> {
    if (!this.weightFeeds) throw new Error('bindWeights must be called before running the model');
    const dims = { batch, seq };
    checkShape(inputIds, dims, 'inputIds');
    checkShape(attentionMask, dims, 'attentionMask');
    const { io } = this.graph;
    const feeds: Record<string, ort.Tensor> = { ...this.weightFeeds };
    feeds[io.inputIds.name] = indexTensor(io.inputIds, inputIds, batch, seq);
    feeds[io.attentionMask.name] = indexTensor(io.attentionMask, attentionMask, batch, seq);
    if (io.positionIds) {
      const pos = new BigInt64Array(batch * seq);
      for (let i = 0; i < pos.length; i++) pos[i] = BigInt(i % seq);
      feeds[io.positionIds.name] = indexTensor(io.positionIds, pos, batch, seq);
    }
    return feeds;
  }
}

function checkShape(a: BigInt64Array, d: { batch: number; seq: number }, what: string): void {
  if (a.length !== d.batch * d.seq) throw new Error(`${what} has ${a.length} elements, expected batch ${d.batch} × seq ${d.seq}`);
}

function indexTensor(input: NamedIndexInput, values: BigInt64Array, batch: number, seq: number): ort.Tensor {
  if (input.type === 'int64') return new ort.Tensor('int64', values, [batch, seq]);
  return new ort.Tensor('int32', Int32Array.from(values, Number), [batch, seq]);
}
