// Shared helpers of the model tests: deterministic right-padded batches and a float64 JS reference of
// the masked next-token loss computed from logits.
import type { FloatWeight } from '../../trainer/model/load';

export interface Batch {
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  batch: number;
  seq: number;
}

/** Rows of the given lengths, padded on the right with id `vocab - 1` and mask 0. */
export function rightPaddedBatch(vocab: number, lengths: number[], seq: number, seed: number): Batch {
  const inputIds = new BigInt64Array(lengths.length * seq).fill(BigInt(vocab - 1));
  const attentionMask = new BigInt64Array(lengths.length * seq);
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    return s;
  };
  lengths.forEach((len, b) => {
    for (let t = 0; t < len; t++) {
      inputIds[b * seq + t] = BigInt(next() % vocab);
      attentionMask[b * seq + t] = 1n;
    }
  });
  return { inputIds, attentionMask, batch: lengths.length, seq };
}

export function referenceLoss(
  logits: Float32Array,
  labels: BigInt64Array,
  batch: number,
  seq: number,
  vocab: number,
): { sum: number; tokens: number; perRow: number[] } {
  let sum = 0;
  let tokens = 0;
  const perRow = new Array<number>(batch).fill(0);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seq; t++) {
      const y = Number(labels[b * seq + t]);
      if (y === -100) continue;
      const base = (b * seq + t) * vocab;
      let max = -Infinity;
      for (let v = 0; v < vocab; v++) max = Math.max(max, logits[base + v]);
      let z = 0;
      for (let v = 0; v < vocab; v++) z += Math.exp(logits[base + v] - max);
      const loss = Math.log(z) + max - logits[base + y];
      sum += loss;
      perRow[b] += loss;
      tokens++;
    }
  }
  return { sum, tokens, perRow };
}

export function weightMap(weights: FloatWeight[]): Map<string, Float32Array> {
  return new Map(weights.map((w) => [w.name, w.data]));
}
