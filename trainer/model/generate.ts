// Greedy decoding against any model that returns the logits at each row's last real position.
// Prompts are right-padded (absolute positions start at 0 for every row); a row leaves the batch
// as soon as it emits EOS, so later steps run only the rows still going.
//
// A model with a KV cache (an `IncrementalDecoder`) decodes prompts of equal length together: the
// prompt runs once, then every new token is one one-token forward over the cache, so n new tokens
// cost O(n) token forwards instead of O(n²). Without one, each new token re-runs the whole sequence.

/**
 * Decoding over a KV cache. `state` is the decoder's own (the cache of `rows` rows of equal length);
 * logits are [rows, vocab] at each row's last position.
 */
export interface IncrementalDecoder {
  /** Runs whole prompts of `seq` tokens each (no padding) on an empty cache. */
  prefill(inputIds: BigInt64Array, rows: number, seq: number): Promise<{ logits: Float32Array; state: unknown }>;
  /** One new token for each row `keep[i]` of `state` (the rows still going, in order). */
  step(state: unknown, keep: readonly number[], tokens: BigInt64Array): Promise<{ logits: Float32Array; state: unknown }>;
}

/** What generation needs from a model session: [batch, vocab] logits at each row's last real token. */
export interface NextTokenModel {
  lastLogits(inputIds: BigInt64Array, attentionMask: BigInt64Array, batch: number, seq: number): Promise<Float32Array>;
  /** When present (and not null), greedy decoding runs one-token steps over this decoder's KV cache. */
  readonly decoder?: IncrementalDecoder | null;
}

export type FinishReason = 'eos' | 'max-new-tokens' | 'max-length';

export interface Generation {
  /** New tokens, without the EOS that ended them. */
  readonly tokens: number[];
  readonly finish: FinishReason;
}

export interface GenerateOptions {
  readonly maxNewTokens: number;
  readonly eosId: number;
  readonly padId: number;
  /** Model context length: a row stops when prompt + new tokens reach it. */
  readonly maxLength?: number;
  /** Prompts decoded together (default all of them). */
  readonly batchSize?: number;
  /** Use the model's KV cache when it has one (default true). */
  readonly useCache?: boolean;
}

/** Index of the largest finite logit of a row; the first one on ties (as torch.argmax on CPU). */
export function argmaxRow(logits: Float32Array, row: number, vocab: number): number {
  let best = -1;
  let bestValue = -Infinity;
  const base = row * vocab;
  for (let v = 0; v < vocab; v++) {
    const x = logits[base + v];
    if (x > bestValue) {
      bestValue = x;
      best = v;
    }
  }
  if (best === -1) throw new Error(`row ${row}: the model returned no finite logit`);
  return best;
}

type Progress = { tokens: number[]; finish: FinishReason | undefined };

/** Appends the argmax of row `b` to generation `g` (whose sequence is `seq`), or finishes it. */
function advance(g: Progress, seq: number[], logits: Float32Array, b: number, vocab: number, o: GenerateOptions, maxLength: number): void {
  const next = argmaxRow(logits, b, vocab);
  if (next === o.eosId) {
    g.finish = 'eos';
    return;
  }
  g.tokens.push(next);
  seq.push(next);
  if (g.tokens.length >= o.maxNewTokens) g.finish = 'max-new-tokens';
  else if (seq.length >= maxLength) g.finish = 'max-length';
}

function vocabOf(logits: Float32Array, batch: number): number {
  if (logits.length % batch !== 0 || logits.length === 0) throw new Error(`the model returned ${logits.length} logits for a batch of ${batch}`);
  return logits.length / batch;
}

/** Prompts of one length decoded together over the cache. */
async function generateCached(
  decoder: IncrementalDecoder,
  rows: number[],
  seqs: number[][],
  out: Progress[],
  o: GenerateOptions,
  maxLength: number,
): Promise<void> {
  const seq = seqs[rows[0]].length;
  const ids = new BigInt64Array(rows.length * seq);
  rows.forEach((i, r) => seqs[i].forEach((id, t) => (ids[r * seq + t] = BigInt(id))));
  let { logits, state } = await decoder.prefill(ids, rows.length, seq);
  let live = rows;
  for (;;) {
    const vocab = vocabOf(logits, live.length);
    live.forEach((i, r) => advance(out[i], seqs[i], logits, r, vocab, o, maxLength));
    const keep = live.flatMap((i, r) => (out[i].finish === undefined ? [r] : []));
    if (keep.length === 0) return;
    live = keep.map((r) => live[r]);
    ({ logits, state } = await decoder.step(
      state,
      keep,
      BigInt64Array.from(live, (i) => BigInt(seqs[i][seqs[i].length - 1])),
    ));
  }
}

async function generateChunk(model: NextTokenModel, prompts: readonly ArrayLike<number>[], o: GenerateOptions): Promise<Generation[]> {
  const maxLength = o.maxLength ?? Infinity;
  const seqs = prompts.map((p) => Array.from(p));
  const out: Progress[] = prompts.map(() => ({ tokens: [], finish: undefined }));
  seqs.forEach((s, i) => {
    if (s.length === 0) throw new RangeError(`prompt ${i} is empty: greedy decoding needs at least one token`);
    if (s.length >= maxLength) out[i].finish = 'max-length';
    if (o.maxNewTokens <= 0) out[i].finish ??= 'max-new-tokens';
  });

  const decoder = o.useCache === false ? null : (model.decoder ?? null);
  if (decoder) {
    const byLength = new Map<number, number[]>();
    seqs.forEach((s, i) => {
      if (out[i].finish !== undefined) return;
      const group = byLength.get(s.length) ?? [];
      group.push(i);
      byLength.set(s.length, group);
    });
    for (const rows of byLength.values()) await generateCached(decoder, rows, seqs, out, o, maxLength);
    return out.map((g) => ({ tokens: g.tokens, finish: g.finish ?? 'max-new-tokens' }));
  }

  for (;;) {
    const active = out.flatMap((g, i) => (g.finish === undefined ? [i] : []));
    if (active.length === 0) break;
    const batch = active.length;
    const seq = Math.max(...active.map((i) => seqs[i].length));
    const inputIds = new BigInt64Array(batch * seq).fill(BigInt(o.padId));
    const attentionMask = new BigInt64Array(batch * seq);
    active.forEach((i, b) => {
      seqs[i].forEach((id, t) => {
        inputIds[b * seq + t] = BigInt(id);
        attentionMask[b * seq + t] = 1n;
      });
    });
    const logits = await model.lastLogits(inputIds, attentionMask, batch, seq);
    const vocab = vocabOf(logits, batch);
    active.forEach((i, b) => advance(out[i], seqs[i], logits, b, vocab, o, maxLength));
  }
  return out.map((g) => ({ tokens: g.tokens, finish: g.finish ?? 'max-new-tokens' }));
}

/** Greedy continuation of each prompt, in the prompts' order. */
export async function greedyGenerate(model: NextTokenModel, prompts: readonly ArrayLike<number>[], options: GenerateOptions): Promise<Generation[]> {
  const size = options.batchSize ?? Math.max(1, prompts.length);
  const results: Generation[] = [];
  for (let i = 0; i < prompts.length; i += size) results.push(...(await generateChunk(model, prompts.slice(i, i + size), options)));
  return results;
}
