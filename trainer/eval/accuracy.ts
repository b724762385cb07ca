// Next-token top-1 accuracy: the share of target tokens that are the model's most likely next token
// (argmax of the logits at the position before them), over the same targets the loss counts.
import { argmaxRow } from '../model/generate';

export interface Top1Count {
  readonly correct: number;
  readonly targets: number;
}

/**
 * Counts the targets of one sequence: token t (t ≥ 1, and lossMask[t] where there is a mask) against the
 * argmax of `logits` at t − 1. `logits` is [ids.length, vocab].
 */
export function top1Count(logits: Float32Array, ids: ArrayLike<number>, lossMask?: ArrayLike<number>): Top1Count {
  const n = ids.length;
  if (n === 0) return { correct: 0, targets: 0 };
  if (logits.length % n !== 0) throw new Error(`${logits.length} logits for ${n} positions`);
  const vocab = logits.length / n;
  let correct = 0;
  let targets = 0;
  for (let t = 1; t < n; t++) {
    if (lossMask && !lossMask[t]) continue;
    targets++;
    if (argmaxRow(logits, t - 1, vocab) === ids[t]) correct++;
  }
  return { correct, targets };
}

export class Top1Accumulator {
  private correct = 0;
  private targets = 0;

  add(c: Top1Count): void {
    if (c.correct < 0 || c.correct > c.targets) throw new RangeError(`${c.correct} correct of ${c.targets} targets`);
    this.correct += c.correct;
    this.targets += c.targets;
  }

  /** NaN until a target was counted. */
  get accuracy(): number {
    return this.targets > 0 ? this.correct / this.targets : Number.NaN;
  }

  get count(): Top1Count {
    return { correct: this.correct, targets: this.targets };
  }
}
