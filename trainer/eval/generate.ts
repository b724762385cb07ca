// Greedy decoding against any model that returns the logits at each row's last real position.
// Prompts are right-padded (absolute positions start at 0 for every row); a row leaves the batch
// as soon as it emits EOS, so later steps run only the rows still going.

/** What generation needs from a model session: [batch, vocab] logits at each row's last real token. */
export interface NextTokenModel {
  lastLogits(inputIds: BigInt64Array, attentionMask: BigInt64Array, batch: number, seq: number): Promise<Float32Array>;
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

async function generateChunk(model: NextTokenModel, prompts: readonly ArrayLike<number>[], o: GenerateOptions): Promise<Generation[]> {
  const maxLength = o.maxLength ?? Infinity;
  const seqs = prompts.map((p) => Array.from(p));
  const out: { tokens: number[]; finish: FinishReason | undefined }[] = prompts.map(() => ({ tokens: [], finish: undefined }));
  seqs.forEach((s, i) => {
    if (s.length === 0) throw new RangeError(`prompt ${i} is empty: greedy decoding needs at least one token`);
    if (s.length >= maxLength) out[i].finish = 'max-length';
    if (o.maxNewTokens <= 0) out[i].finish ??= 'max-new-tokens';
  });

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
    if (logits.length % batch !== 0 || logits.length === 0) {
      throw new Error(`lastLogits returned ${logits.length} values for a batch of ${batch}`);
    }
    const vocab = logits.length / batch;
    active.forEach((i, b) => {
      const next = argmaxRow(logits, b, vocab);
      const g = out[i];
      if (next === o.eosId) {
        g.finish = 'eos';
        return;
      }
      g.tokens.push(next);
      seqs[i].push(next);
      if (g.tokens.length >= o.maxNewTokens) g.finish = 'max-new-tokens';
      else if (seqs[i].length >= maxLength) g.finish = 'max-length';
    });
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
