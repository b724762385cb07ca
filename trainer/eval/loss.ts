// Held-out loss: token-weighted, so batches with more target tokens count more (sum of token
// losses / number of target tokens), and perplexity = exp(mean loss).
import { type TokenBatch, evalBatches } from '../data/batches';
import type { Example } from '../data/examples';

export interface LossSum {
  /** Sum of the per-token cross-entropies (nats) over the batch's target positions. */
  readonly lossSum: number;
  readonly tokens: number;
}

/** What an evaluator needs from a model session. */
export interface LossModel {
  lossSum(batch: TokenBatch): Promise<LossSum>;
}

export interface LossSummary {
  readonly loss: number;
  readonly perplexity: number;
  readonly tokens: number;
}

/** A batch's loss sum was not finite (a diverged model): the accumulator refuses it, callers may take it as a result. */
export class NonFiniteLossError extends RangeError {}

export class LossAccumulator {
  private sum = 0;
  private count = 0;

  add({ lossSum, tokens }: LossSum): void {
    if (!Number.isFinite(lossSum)) throw new NonFiniteLossError(`loss sum is not finite (${lossSum})`);
    if (!Number.isInteger(tokens) || tokens < 0) throw new RangeError(`token count must be a non-negative integer, got ${tokens}`);
    this.sum += lossSum;
    this.count += tokens;
  }

  /** NaN until at least one target token was added: no data means no loss, not zero loss. */
  summary(): LossSummary {
    const loss = this.count > 0 ? this.sum / this.count : Number.NaN;
    return { loss, perplexity: Math.exp(loss), tokens: this.count };
  }
}

export async function evaluateLoss(
  model: LossModel,
  examples: readonly Example[],
  options: { readonly batchSize: number; readonly seqLen: number; readonly padId: number },
): Promise<LossSummary> {
  const acc = new LossAccumulator();
  for (const batch of evalBatches(examples, options)) acc.add(await model.lossSum(batch));
  return acc.summary();
}
