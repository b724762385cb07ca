// Labels for the in-graph loss: labels[b,t] is the token that position t should predict.
import { IGNORE_INDEX } from './rewrite';

/**
 * Next-token labels for right-padded rows: labels[b,t] = inputIds[b,t+1] where positions t and t+1 are
 * both attended, -100 elsewhere (the last real token and the padding predict nothing).
 */
export function nextTokenLabels(inputIds: BigInt64Array, attentionMask: BigInt64Array, batch: number, seq: number): BigInt64Array {
  const labels = new BigInt64Array(batch * seq).fill(BigInt(IGNORE_INDEX));
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t + 1 < seq; t++) {
      const i = b * seq + t;
      if (attentionMask[i] !== 0n && attentionMask[i + 1] !== 0n) labels[i] = inputIds[i + 1];
    }
  }
  return labels;
}
