// Greedy decoding over a KV cache for decoders exported with past key values: the prompt runs once,
// then each new token is a one-token forward that reads the cache the previous one returned, so n new
// tokens cost n short forwards instead of n forwards over the whole sequence. The weights are the same
// float32 arrays the training session reads (bound as graph inputs), so generation follows training.
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import type { IncrementalDecoder } from './generate';
import type { LoadedModel } from './load';
import { decodeModel, encodeModel, DataType } from './onnx';
import { bindWeightInputs } from './rewrite';
import { decodeFloats } from './tensor-data';
import type { NamedIndexInput, PastInput } from './validate';

export interface DecoderOptions {
  intraOpNumThreads?: number;
  /** One execution provider name (default 'cpu'). */
  executionProvider?: string;
}

/** The cache after a forward: each past input's next value, for `rows` rows of `length` tokens. */
interface CacheState {
  readonly rows: number;
  readonly length: number;
  readonly past: Map<string, ort.Tensor>;
}

const ORT_TYPES: Record<number, ort.Tensor.Type> = {
  [DataType.FLOAT]: 'float32',
  [DataType.FLOAT16]: 'float16',
  [DataType.DOUBLE]: 'float64',
};

/** True when `model` can decode with its cache: every past input has a matching present output. */
export function canDecodeWithCache(model: LoadedModel): boolean {
  const cache = model.io.cache;
  return cache !== null && cache.past.every((p) => p.present !== null && ORT_TYPES[p.elemType] !== undefined);
}

export class CachedDecoder implements IncrementalDecoder {
  private weightFeeds: Record<string, ort.Tensor> | null = null;

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly model: LoadedModel,
    private readonly weightInputs: ReadonlyMap<string, string>,
  ) {}

  /** A session over the model's own interface (past inputs, present outputs) with the weights as inputs. */
  static async create(model: LoadedModel, options: DecoderOptions = {}): Promise<CachedDecoder> {
    if (!canDecodeWithCache(model)) throw new Error(`${model.file}: no KV cache to decode with`);
    const proto = decodeModel(encodeModel(model.proto));
    const graph = proto.graph;
    const sources = bindWeightInputs(graph, model.weights);
    const keep = new Set([model.io.logits, ...(model.io.cache?.past.map((p) => p.present as string) ?? [])]);
    graph.output = graph.output.filter((v) => keep.has(v.name));
    const session = await ort.InferenceSession.create(encodeModel(proto), {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: options.intraOpNumThreads ?? availableParallelism(),
      executionProviders: [options.executionProvider ?? 'cpu'],
      logSeverityLevel: 3,
    });
    return new CachedDecoder(session, model, sources);
  }

  /** Binds the weights (by weight name), wrapped, not copied; rebind when an array is replaced. */
  bindWeights(weights: ReadonlyMap<string, Float32Array>): void {
    const feeds: Record<string, ort.Tensor> = {};
    for (const spec of this.model.weights) {
      const data = weights.get(spec.name);
      if (!data) throw new Error(`bindWeights: no array for weight '${spec.name}'`);
      feeds[this.weightInputs.get(spec.name) as string] = new ort.Tensor('float32', data, spec.dims);
    }
    this.weightFeeds = feeds;
  }

  async prefill(inputIds: BigInt64Array, rows: number, seq: number): Promise<{ logits: Float32Array; state: unknown }> {
    if (inputIds.length !== rows * seq) throw new Error(`inputIds has ${inputIds.length} elements, expected ${rows} × ${seq}`);
    const past = new Map<string, ort.Tensor>();
    for (const p of this.cache.past) past.set(p.name, emptyPast(p, rows));
    return this.forward(inputIds, { rows, length: 0, past }, seq);
  }

  /** Logits at every position, [rows, seq, vocab], of whole prompts run on an empty cache (what scoring reads). */
  async allLogits(inputIds: BigInt64Array, rows: number, seq: number): Promise<Float32Array> {
    if (inputIds.length !== rows * seq) throw new Error(`inputIds has ${inputIds.length} elements, expected ${rows} × ${seq}`);
    const past = new Map<string, ort.Tensor>();
    for (const p of this.cache.past) past.set(p.name, emptyPast(p, rows));
    return (await this.forward(inputIds, { rows, length: 0, past }, seq)).all;
  }

  async step(state: unknown, keep: readonly number[], tokens: BigInt64Array): Promise<{ logits: Float32Array; state: unknown }> {
    const s = state as CacheState;
    if (tokens.length !== keep.length) throw new Error(`${tokens.length} tokens for ${keep.length} rows`);
    const same = keep.length === s.rows && keep.every((r, i) => r === i);
    const past = same ? s.past : new Map([...s.past].map(([name, t]) => [name, selectRows(t, keep)]));
    return this.forward(tokens, { rows: keep.length, length: s.length, past }, 1);
  }

  async release(): Promise<void> {
    this.weightFeeds = null;
    await this.session.release();
  }

  private get cache(): NonNullable<LoadedModel['io']['cache']> {
    return this.model.io.cache as NonNullable<LoadedModel['io']['cache']>;
  }

  /** Runs `seq` new tokens per row after `state.length` cached ones. */
  private async forward(ids: BigInt64Array, state: CacheState, seq: number): Promise<{ logits: Float32Array; state: CacheState; all: Float32Array }> {
    if (!this.weightFeeds) throw new Error('bindWeights must be called before running the model');
    const { io } = this.model;
    const { rows, length } = state;
    const total = length + seq;
    const feeds: Record<string, ort.Tensor> = { ...this.weightFeeds };
    feeds[io.inputIds.name] = indexTensor(io.inputIds, ids, [rows, seq]);
    feeds[io.attentionMask.name] = indexTensor(io.attentionMask, new BigInt64Array(rows * total).fill(1n), [rows, total]);
    if (io.positionIds) {
      const pos = new BigInt64Array(rows * seq);
      for (let i = 0; i < pos.length; i++) pos[i] = BigInt(length + (i % seq));
      feeds[io.positionIds.name] = indexTensor(io.positionIds, pos, [rows, seq]);
    }
    if (this.cache.useCacheBranch) feeds[this.cache.useCacheBranch] = new ort.Tensor('bool', [length > 0], [1]);
    for (const [name, t] of state.past) feeds[name] = t;
    const out = await this.session.run(feeds);
    const logits = out[io.logits];
    const vocab = logits.dims[2];
    const last = new Float32Array(rows * vocab);
    const all = floats(logits);
    for (let r = 0; r < rows; r++) last.set(all.subarray(((r + 1) * seq - 1) * vocab, (r + 1) * seq * vocab), r * vocab);
    const past = new Map<string, ort.Tensor>();
    for (const p of this.cache.past) past.set(p.name, out[p.present as string]);
    return { logits: last, state: { rows, length: total, past }, all };
  }
}

function indexTensor(input: NamedIndexInput, values: BigInt64Array, dims: number[]): ort.Tensor {
  if (input.type === 'int64') return new ort.Tensor('int64', values, dims);
  return new ort.Tensor('int32', Int32Array.from(values, Number), dims);
}

function emptyPast(p: PastInput, rows: number): ort.Tensor {
  const dims = p.dims.map((d, i) => (i === 0 ? rows : i === p.sequenceAxis ? 0 : (d as number)));
  const type = ORT_TYPES[p.elemType];
  const data = type === 'float32' ? new Float32Array(0) : type === 'float16' ? new Uint16Array(0) : new Float64Array(0);
  return new ort.Tensor(type, data, dims);
}

/** Rows `keep` of a tensor whose first axis is the batch. */
function selectRows(t: ort.Tensor, keep: readonly number[]): ort.Tensor {
  const rows = t.dims[0];
  const data = t.data as Float32Array | Uint16Array | Float64Array;
  const size = rows === 0 ? 0 : data.length / rows;
  const out = new (data.constructor as { new (n: number): typeof data })(keep.length * size);
  keep.forEach((r, i) => out.set(data.subarray(r * size, (r + 1) * size), i * size));
  return new ort.Tensor(t.type, out, [keep.length, ...t.dims.slice(1)]);
}

/** Logits as float32, whatever the model's logits type. */
function floats(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') {
    const half = t.data as Uint16Array;
    const out = new Float32Array(half.length);
    decodeFloats(new Uint8Array(half.buffer, half.byteOffset, half.byteLength), 'float16', out);
    return out;
  }
  return Float32Array.from(t.data as Float64Array);
}
