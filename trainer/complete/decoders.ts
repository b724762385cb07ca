// The fastest decoder a model allows for completions. A model exported with past key values decodes
// over its own cache. A GPT-2-shaped model exported without one (the bundled model) gets a companion
// graph with a cache, built by trainer/model/gpt2-builder.ts from its config, that reads the model's own
// weights by name; it is used only when its weights match the model's one for one. Any other model
// re-runs the whole sequence for each new token.
import { existsSync, readFileSync } from 'node:fs';
import { CachedDecoder, canDecodeWithCache } from '../model/decoder';
import { gpt2Bytes, type Gpt2Config } from '../model/gpt2-builder';
import { parseModel, type LoadedModel } from '../model/load';
import { ModelSession } from '../device/session';
import type { CompletionModel } from './generator';
import type { WeightMap } from './weights';

export type DecoderKind = 'model-cache' | 'companion-cache' | 'no-cache';

export interface CompletionDecoder {
  readonly kind: DecoderKind;
  /** The model with a cache (when there is one) and the whole-sequence forward. */
  readonly model: CompletionModel;
  /** Logits at every position [rows, seq, vocab] (held-out accuracy). */
  readonly allLogits: (inputIds: BigInt64Array, rows: number, seq: number) => Promise<Float32Array>;
  bindWeights(weights: WeightMap): void;
  release(): Promise<void>;
}

/** The builder config of a GPT-2 config.json whose blocks the builder reproduces exactly, else null. */
export function gpt2ConfigOf(configPath: string | null | undefined): Gpt2Config | null {
  if (!configPath || !existsSync(configPath)) return null;
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
  const num = (k: string): number | undefined => (typeof c[k] === 'number' ? (c[k] as number) : undefined);
  const [vocab, ctx, dModel, layers, heads] = ['vocab_size', 'n_positions', 'n_embd', 'n_layer', 'n_head'].map(num);
  // The builder's GELU is the exact (erf) one, its LayerNorm's ε 1e-5.
  if (c.model_type !== 'gpt2' || c.activation_function !== 'gelu' || (num('layer_norm_epsilon') ?? 1e-5) !== 1e-5) return null;
  if (!vocab || !ctx || !dModel || !layers || !heads) return null;
  const inner = num('n_inner');
  return {
    vocab,
    ctx,
    dModel,
    layers,
    heads,
    mlpRatio: inner ? inner / dModel : 4,
    tiedEmbeddings: c.tie_word_embeddings !== false,
    dtype: 'float32',
    seed: 1,
    kvCache: true,
  };
}

function sameWeights(a: LoadedModel, b: LoadedModel): boolean {
  if (a.weights.length !== b.weights.length) return false;
  const dims = new Map(b.weights.map((w) => [w.name, w.dims.join('x')]));
  return a.weights.every((w) => dims.get(w.name) === w.dims.join('x'));
}

/** A companion decoder with a cache for `model`, or null when the model is not one the builder reproduces. */
export function companionModel(model: LoadedModel, configPath: string | null | undefined): LoadedModel | null {
  const config = gpt2ConfigOf(configPath);
  if (!config) return null;
  const companion = parseModel(gpt2Bytes(config), `${model.file} (with a KV cache)`);
  return sameWeights(model, companion) && companion.io.cache !== null ? companion : null;
}

export async function openCompletionDecoder(model: LoadedModel, configPath: string | null | undefined, threads: number): Promise<CompletionDecoder> {
  const cachedModel = canDecodeWithCache(model) ? model : companionModel(model, configPath);
  const kind: DecoderKind = cachedModel === model ? 'model-cache' : cachedModel ? 'companion-cache' : 'no-cache';
  const decoder = cachedModel ? await CachedDecoder.create(cachedModel, { intraOpNumThreads: threads }) : null;
  // The whole-sequence forward (models without a cache, and runs that turn the cache off) is made when first used.
  let session: Promise<ModelSession> | null = null;
  let bound: WeightMap | null = null;
  const forward = (): Promise<ModelSession> =>
    (session ??= ModelSession.create(model, { intraOpNumThreads: threads }).then((s) => {
      if (bound) s.bindWeights(bound);
      return s;
    }));
  return {
    kind,
    model: { decoder, lastLogits: async (ids, mask, batch, seq) => (await forward()).lastLogits(ids, mask, batch, seq) },
    allLogits: decoder ? (ids, rows, seq) => decoder.allLogits(ids, rows, seq) : async (ids, rows, seq) => prefixLogits(await forward(), ids, rows, seq),
    bindWeights(weights) {
      bound = weights;
      decoder?.bindWeights(weights);
      void session?.then((s) => s.bindWeights(weights));
    },
    async release() {
      await decoder?.release();
      if (session) await (await session).release();
    },
  };
}

/** Prefixes scored per forward when a model has no cache graph: bounds the batch at PREFIX_CHUNK × seq tokens. */
const PREFIX_CHUNK = 16;

/**
 * Logits at every position from a graph that returns only each row's last ones: position t is the last of
 * the prefix of length t + 1, so the prefixes of a row, right-padded, go through in batches. seq²/2 tokens
 * instead of seq, the price of a model exported without a cache.
 */
async function prefixLogits(session: ModelSession, inputIds: BigInt64Array, rows: number, seq: number): Promise<Float32Array> {
  let vocab = 0;
  let out: Float32Array | null = null;
  for (let r = 0; r < rows; r++) {
    const row = inputIds.subarray(r * seq, (r + 1) * seq);
    for (let first = 0; first < seq; first += PREFIX_CHUNK) {
      const batch = Math.min(PREFIX_CHUNK, seq - first);
      const ids = new BigInt64Array(batch * seq);
      const mask = new BigInt64Array(batch * seq);
      for (let b = 0; b < batch; b++) {
        const length = first + b + 1;
        ids.set(row.subarray(0, length), b * seq);
        mask.fill(1n, b * seq, b * seq + length);
      }
      const last = await session.lastLogits(ids, mask, batch, seq);
      if (!out) {
        vocab = last.length / batch;
        out = new Float32Array(rows * seq * vocab);
      }
      out.set(last, (r * seq + first) * vocab);
    }
  }
  return out ?? new Float32Array(0);
}
