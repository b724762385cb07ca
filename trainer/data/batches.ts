// Examples → int64 tensors for the model. Right padding (the bundled model has absolute positions
// 0..T-1 and no position_ids input), and labels already shifted for next-token loss.
import type { Example } from './examples';
import { createRng, deriveSeed, shuffleInPlace } from './rng';

export const IGNORE_INDEX = -100;

/** The layout the model session's lossSum takes; all arrays are [batch, seq] row-major. */
export interface TokenBatch {
  readonly inputIds: BigInt64Array;
  readonly attentionMask: BigInt64Array;
  /** labels[b,t] = target for position t (the next token), or -100. */
  readonly labels: BigInt64Array;
  readonly batch: number;
  readonly seq: number;
}

export interface CollateOptions {
  /** Longer examples are cut to this many tokens. */
  readonly seqLen: number;
  readonly padId: number;
}

/**
 * Pads to the longest example in the batch (at most seqLen). labels[t] = ids[t+1] when token t+1
 * is a target (its loss-mask bit is 1), else -100; padding positions are mask 0, label -100.
 */
export function collate(examples: readonly Example[], { seqLen, padId }: CollateOptions): TokenBatch {
  if (examples.length === 0) throw new RangeError('cannot collate an empty batch');
  const batch = examples.length;
  let seq = 0;
  for (const e of examples) seq = Math.max(seq, Math.min(e.ids.length, seqLen));
  const inputIds = new BigInt64Array(batch * seq).fill(BigInt(padId));
  const attentionMask = new BigInt64Array(batch * seq);
  const labels = new BigInt64Array(batch * seq).fill(BigInt(IGNORE_INDEX));
  examples.forEach((e, b) => {
    const len = Math.min(e.ids.length, seqLen);
    const row = b * seq;
    for (let t = 0; t < len; t++) {
      inputIds[row + t] = BigInt(e.ids[t]);
      attentionMask[row + t] = 1n;
      if (t + 1 < len && (!e.lossMask || e.lossMask[t + 1] === 1)) labels[row + t] = BigInt(e.ids[t + 1]);
    }
  });
  return { inputIds, attentionMask, labels, batch, seq };
}

export interface SamplerOptions extends CollateOptions {
  readonly batchSize: number;
  readonly seed: number;
}

/**
 * The training sampler: an endless stream of epochs, each a seeded permutation of the examples,
 * cut into batches. Batch n depends only on (examples, seed, n), so a run resumes exactly from a
 * saved step number.
 */
export class BatchSampler {
  private epoch = -1;
  private order: number[] = [];
  private nextStep: number;

  constructor(
    private readonly examples: readonly Example[],
    private readonly options: SamplerOptions,
    startStep = 0,
  ) {
    if (examples.length === 0) throw new RangeError('no examples to sample from');
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${options.batchSize}`);
    this.nextStep = startStep;
  }

  /** The step the next call to next() returns. */
  get step(): number {
    return this.nextStep;
  }

  private indexAt(position: number): number {
    const n = this.examples.length;
    const epoch = Math.floor(position / n);
    if (epoch !== this.epoch) {
      this.order = shuffleInPlace(
        Array.from({ length: n }, (_, i) => i),
        createRng(deriveSeed(this.options.seed, epoch)),
      );
      this.epoch = epoch;
    }
    return this.order[position % n];
  }

  /** Examples of a step; a batch may straddle two epochs. */
  examplesAt(step: number): Example[] {
    const { batchSize } = this.options;
    return Array.from({ length: batchSize }, (_, i) => this.examples[this.indexAt(step * batchSize + i)]);
  }

  next(): TokenBatch {
    const batch = collate(this.examplesAt(this.nextStep), this.options);
    this.nextStep++;
    return batch;
  }
}

/** Every example once, in order, in batches of batchSize (the last may be smaller). */
export function* evalBatches(examples: readonly Example[], options: CollateOptions & { readonly batchSize: number }): Generator<TokenBatch> {
  for (let i = 0; i < examples.length; i += options.batchSize) yield collate(examples.slice(i, i + options.batchSize), options);
}
