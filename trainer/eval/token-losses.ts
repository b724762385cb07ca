// The loss of each token of a sequence given the ones before it: what a report colours to show where
// fine-tuning moved the model. One forward of n − 1 rows, row i holding the prefix ids[0..i] (right-padded,
// masked), so the model's last-token logits of row i predict ids[i + 1].
import type { NextTokenModel } from '../model/generate';

/** −log softmax(logits row `row`)[target], computed stably in float64. */
export function tokenLoss(logits: Float32Array, row: number, vocab: number, target: number): number {
  const base = row * vocab;
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) max = Math.max(max, logits[base + v]);
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += Math.exp(logits[base + v] - max);
  return Math.log(sum) + max - logits[base + target];
}

/** Losses of tokens 1 … n − 1 of `ids` (nats each), in order. */
export async function tokenLosses(model: NextTokenModel, ids: ArrayLike<number>, padId: number): Promise<Float64Array> {
  const n = ids.length;
  if (n < 2) return new Float64Array(0);
  const rows = n - 1;
  const input = new BigInt64Array(rows * n).fill(BigInt(padId));
  const mask = new BigInt64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t <= r; t++) {
      input[r * n + t] = BigInt(ids[t]);
      mask[r * n + t] = 1n;
    }
  }
  const logits = await model.lastLogits(input, mask, rows, n);
  const vocab = logits.length / rows;
  return Float64Array.from({ length: rows }, (_, r) => tokenLoss(logits, r, vocab, ids[r + 1]));
}
