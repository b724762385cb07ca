// Held-out measures a person can read, beside the loss: next-token top-1 accuracy, and the share of
// next lines completed exactly (code) or the Rouge-L of generated answers (instruction data). They run
// in a scoring session of their own (trainer/complete/decoders.ts) over a copy of the weights, taken
// when the caller says they are at rest (before training, at an evaluation, after a round).
import { availableParallelism } from 'node:os';
import type { Example } from '../data/examples';
import type { TextTokenizer } from '../data/tokenizer';
import type { Engine } from '../engine';
import { openCompletionDecoder, type CompletionDecoder } from '../complete/decoders';
import { complete } from '../complete/generator';
import { snapshotWeights } from '../complete/weights';
import { Top1Accumulator, top1Count } from './accuracy';
import { exactLineMatch, nextLineCase } from './next-line';
import { rougeL } from './rouge';

export interface HeldOutMetrics {
  /** Next-token top-1 accuracy over the examples' targets; null when no example has a target. */
  readonly accuracy: number | null;
  readonly accuracyTargets: number;
  /** Code (examples without a reference): exact-match share of the next lines generated; else null. */
  readonly exactMatch: number | null;
  /** Instruction data: mean Rouge-L F of the generated answers; else null. */
  readonly rougeL: number | null;
  /** Examples generated for exactMatch or rougeL. */
  readonly generated: number;
}

export interface MetricsOptions {
  /** Examples generated for the exact match or Rouge-L (the first of those scored; default 16). */
  readonly generationExamples?: number;
  /** New tokens at most per generation (default 48). */
  readonly maxNewTokens?: number;
  /** The model's context: longer examples are scored on their first tokens. */
  readonly context?: number;
}

export async function scoreHeldOut(
  decoder: CompletionDecoder,
  tokenizer: TextTokenizer,
  examples: readonly Example[],
  o: MetricsOptions = {},
): Promise<HeldOutMetrics> {
  const context = o.context ?? Infinity;
  const maxNewTokens = o.maxNewTokens ?? 48;
  const acc = new Top1Accumulator();
  for (const e of examples) {
    const n = Math.min(e.ids.length, context);
    if (n < 2) continue;
    const ids = e.ids.subarray(0, n);
    acc.add(top1Count(await decoder.allLogits(BigInt64Array.from(ids, BigInt), 1, n), ids, e.lossMask?.subarray(0, n)));
  }
  const accuracyTargets = acc.count.targets;
  const accuracy = accuracyTargets > 0 ? acc.accuracy : null;

  // Generated text is scored as text: without a tokenizer (pre-tokenised data) only the accuracy is measured.
  if (tokenizer.idsOnly) return { accuracy, accuracyTargets, exactMatch: null, rougeL: null, generated: 0 };
  const decode = (t: readonly number[]) => tokenizer.decode(t, { skipSpecialTokens: true });
  const generate = (prompt: readonly number[], stop: 'line' | 'none') =>
    complete(decoder.model, decode, prompt.slice(-Math.max(1, context - maxNewTokens)), {
      maxTokens: maxNewTokens,
      sampling: { mode: 'greedy' },
      stop,
      eosId: tokenizer.eosId,
      maxLength: context,
    });
  const chosen = examples.slice(0, o.generationExamples ?? 16);
  const instructions = chosen.filter((e) => e.reference !== undefined && e.promptLength !== undefined);
  if (instructions.length > 0) {
    let sum = 0;
    for (const e of instructions) sum += rougeL((await generate(Array.from(e.ids.subarray(0, e.promptLength)), 'none')).text, e.reference ?? '');
    return { accuracy, accuracyTargets, exactMatch: null, rougeL: sum / instructions.length, generated: instructions.length };
  }
  let matched = 0;
  let generated = 0;
  for (const e of chosen) {
    const c = nextLineCase(decode(Array.from(e.ids)));
    if (!c) continue;
    const prompt = tokenizer.encode(c.prompt, { addSpecialTokens: false });
    if (prompt.length === 0) continue;
    generated++;
    if (exactLineMatch((await generate(prompt, 'line')).text, c.target)) matched++;
  }
  return { accuracy, accuracyTargets, exactMatch: generated > 0 ? matched / generated : null, rougeL: null, generated };
}

/** A scorer over an engine's weights; `score` copies them, so call it while they are at rest. */
export interface MetricsScorer {
  score(examples: readonly Example[], o?: MetricsOptions): Promise<HeldOutMetrics>;
  release(): Promise<void>;
}

export function metricsScorer(engine: Engine, threads = availableParallelism()): MetricsScorer {
  let decoder: Promise<CompletionDecoder> | null = null;
  let queue: Promise<unknown> = Promise.resolve();
  return {
    score(examples, o = {}) {
      // The copy is taken now (on the host engine before this call returns); the scoring may wait its turn.
      const weights = snapshotWeights(engine);
      const run = queue.then(async () => {
        const d = await (decoder ??= openCompletionDecoder(engine.model, engine.located.config, threads));
        d.bindWeights(await weights);
        return scoreHeldOut(d, engine.tokenizer, examples, { context: engine.context, ...o });
      });
      queue = run.catch(() => undefined);
      return run;
    },
    async release() {
      await queue;
      if (decoder) await (await decoder).release();
      decoder = null;
    },
  };
}
