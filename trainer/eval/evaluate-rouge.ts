// Rouge-L evaluation of instruction examples: greedy answers to each prompt, decoded without
// special tokens, scored against the reference answer (as in the FedKSeed paper: up to 128 new
// tokens, mean F-score).
import type { Example } from '../data/examples';
import type { TextTokenizer } from '../data/tokenizer';
import { type Generation, type NextTokenModel, greedyGenerate } from '../model/generate';
import { rougeL } from './rouge';

export interface RougeEvaluation {
  /** Mean Rouge-L F over the scored examples (NaN when none). */
  readonly rougeL: number;
  readonly scores: number[];
  readonly hypotheses: string[];
  readonly generations: Generation[];
}

export async function evaluateRougeL(
  model: NextTokenModel,
  tokenizer: TextTokenizer,
  examples: readonly Example[],
  options: { readonly maxNewTokens?: number; readonly batchSize?: number; readonly maxLength?: number } = {},
): Promise<RougeEvaluation> {
  const prompts = examples.map((e) => {
    if (e.promptLength === undefined || e.reference === undefined) {
      throw new Error(`example ${e.id} has no prompt/reference: Rouge-L needs instruction data`);
    }
    return e.ids.subarray(0, e.promptLength);
  });
  const generations = await greedyGenerate(model, prompts, {
    maxNewTokens: options.maxNewTokens ?? 128,
    // Without an EOS token generation runs to maxNewTokens.
    eosId: tokenizer.eosId ?? -1,
    padId: tokenizer.padId,
    ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
    ...(options.maxLength !== undefined ? { maxLength: options.maxLength } : {}),
  });
  const hypotheses = generations.map((g) => tokenizer.decode(g.tokens, { skipSpecialTokens: true }));
  const scores = hypotheses.map((h, i) => rougeL(h, examples[i].reference ?? ''));
  const mean = scores.length > 0 ? scores.reduce((a, b) => a + b, 0) / scores.length : Number.NaN;
  return { rougeL: mean, scores, hypotheses, generations };
}
