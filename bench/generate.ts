// `fedkseed bench generate`: greedy decoding with the KV cache (one prompt forward, then one-token
// forwards) against decoding without it (every new token re-runs the whole sequence), on the same
// decoder with past key values (the GPT-2 builder's shape, exported as Optimum's
// decoder_with_past_model.onnx), measured side by side in one run. Both must give the same tokens.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { greedyGenerate, type Generation, type NextTokenModel } from '../trainer/model/generate';
import { CachedDecoder } from '../trainer/model/decoder';
import { GPT2_PRESETS, gpt2ParamCount, loadModel } from '../trainer/model';
import { ModelSession } from '../trainer/device/session';
import { benchCacheDir, cachedModel } from './engine';
import { median } from './zo-step';

export interface GenerateBenchOptions {
  /** Builder preset (default 'zo-10m'). */
  readonly preset?: keyof typeof GPT2_PRESETS;
  /** Prompt tokens per row (default 16). */
  readonly promptTokens?: number;
  /** New-token counts, one row each (default 32, 128, 224). */
  readonly newTokens?: readonly number[];
  /** Prompts decoded together (default 1). */
  readonly batch?: number;
  /** Timed runs of each way per row (default 3); the median is reported. */
  readonly repeats?: number;
  readonly threads?: number;
  readonly cacheDir?: string;
  readonly log?: (line: string) => void;
}

export interface GenerateBenchRow {
  readonly newTokens: number;
  readonly batch: number;
  readonly cachedMs: number;
  readonly uncachedMs: number;
  readonly cachedTokensPerSecond: number;
  readonly uncachedTokensPerSecond: number;
  /** cached tokens/s ÷ uncached tokens/s. */
  readonly speedup: number;
  /** Both ways generated the same tokens. */
  readonly sameTokens: boolean;
}

export interface GenerateBenchResult {
  readonly preset: string;
  readonly parameters: number;
  readonly promptTokens: number;
  readonly threads: number;
  readonly rows: GenerateBenchRow[];
}

export async function runGenerateBench(options: GenerateBenchOptions = {}): Promise<GenerateBenchResult> {
  const preset = options.preset ?? 'zo-10m';
  const promptTokens = options.promptTokens ?? 16;
  const newTokens = options.newTokens ?? [32, 128, 224];
  const batch = options.batch ?? 1;
  const repeats = options.repeats ?? 3;
  const threads = options.threads ?? availableParallelism();
  const log = options.log ?? (() => {});
  const config = GPT2_PRESETS[preset];
  for (const n of newTokens) {
    if (promptTokens + n > config.ctx) throw new RangeError(`${promptTokens} prompt + ${n} new tokens exceed the model's context of ${config.ctx}`);
  }

  log(`building/loading ${preset} with a KV cache…`);
  const model = await loadModel(cachedModel(preset, resolve(options.cacheDir ?? benchCacheDir()), { kvCache: true }));
  const weights = new Map(model.weights.map((w) => [w.name, w.data]));
  const session = await ModelSession.create(model, { intraOpNumThreads: threads });
  session.bindWeights(weights);
  const decoder = await CachedDecoder.create(model, { intraOpNumThreads: threads });
  decoder.bindWeights(weights);
  const uncached: NextTokenModel = session;
  const cached: NextTokenModel = { lastLogits: (...a) => session.lastLogits(...a), decoder };
  const prompts = Array.from({ length: batch }, (_, b) => Array.from({ length: promptTokens }, (_, t) => (b * 131 + t * 17 + 5) % config.vocab));

  const timed = async (m: NextTokenModel, n: number): Promise<{ ms: number; out: Generation[] }> => {
    const start = performance.now();
    // No EOS: every row runs to n new tokens, so both ways do the same work.
    const out = await greedyGenerate(m, prompts, { maxNewTokens: n, eosId: -1, padId: 0 });
    return { ms: performance.now() - start, out };
  };
  const rows: GenerateBenchRow[] = [];
  try {
    await timed(cached, 4);
    await timed(uncached, 4);
    for (const n of newTokens) {
      const a: number[] = [];
      const b: number[] = [];
      let same = true;
      // Alternating, so both ways see the same machine state.
      for (let r = 0; r < repeats; r++) {
        const c = await timed(cached, n);
        const u = await timed(uncached, n);
        a.push(c.ms);
        b.push(u.ms);
        same &&= JSON.stringify(c.out) === JSON.stringify(u.out);
      }
      const cachedMs = median(a);
      const uncachedMs = median(b);
      const tokens = n * batch;
      rows.push({
        newTokens: n,
        batch,
        cachedMs,
        uncachedMs,
        cachedTokensPerSecond: (tokens * 1000) / cachedMs,
        uncachedTokensPerSecond: (tokens * 1000) / uncachedMs,
        speedup: uncachedMs / cachedMs,
        sameTokens: same,
      });
      log(`${n} new tokens: cached ${cachedMs.toFixed(0)} ms, without the cache ${uncachedMs.toFixed(0)} ms`);
    }
  } finally {
    await decoder.release();
    await session.release();
  }
  return { preset, parameters: gpt2ParamCount(config), promptTokens, threads, rows };
}
