// How the next token is chosen from a row of logits: greedy (argmax), or sampled at a temperature from
// the smallest set of tokens whose probability reaches top-p (nucleus sampling), with a seeded stream so
// a completion can be repeated.
import { createRng } from '../data/rng';
import { argmaxRow } from '../model/generate';

export type Sampling = { readonly mode: 'greedy' } | { readonly mode: 'sample'; readonly temperature: number; readonly topP: number; readonly seed: number };

/** Probabilities of the nucleus of a row (softmax at `temperature`, cut at `topP`), sorted by probability. */
export function nucleus(logits: Float32Array, row: number, vocab: number, temperature: number, topP: number): { ids: number[]; probs: number[] } {
  if (!(temperature > 0)) throw new RangeError(`temperature must be above 0, got ${temperature}`);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`top-p must be in (0, 1], got ${topP}`);
  const base = row * vocab;
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) if (logits[base + v] > max) max = logits[base + v];
  if (max === -Infinity || Number.isNaN(max)) throw new Error(`row ${row}: the model returned no finite logit`);
  const weights = new Float64Array(vocab);
  let total = 0;
  for (let v = 0; v < vocab; v++) {
    const x = logits[base + v];
    const w = Number.isFinite(x) ? Math.exp((x - max) / temperature) : 0;
    weights[v] = w;
    total += w;
  }
  const order = Array.from({ length: vocab }, (_, v) => v).filter((v) => weights[v] > 0);
  order.sort((a, b) => weights[b] - weights[a] || a - b);
  const ids: number[] = [];
  const probs: number[] = [];
  let mass = 0;
  for (const v of order) {
    ids.push(v);
    probs.push(weights[v] / total);
    mass += weights[v] / total;
    if (mass >= topP) break;
  }
  const kept = probs.reduce((a, b) => a + b, 0);
  return { ids, probs: probs.map((p) => p / kept) };
}

/** A chooser of the next token for a completion: greedy, or sampled from its own seeded stream. */
export function tokenChooser(sampling: Sampling): (logits: Float32Array, row: number, vocab: number) => number {
  if (sampling.mode === 'greedy') return argmaxRow;
  const rng = createRng(sampling.seed);
  return (logits, row, vocab) => {
    const { ids, probs } = nucleus(logits, row, vocab, sampling.temperature, sampling.topP);
    let u = rng.nextFloat();
    for (let i = 0; i < ids.length; i++) {
      u -= probs[i];
      if (u < 0) return ids[i];
    }
    return ids[ids.length - 1];
  };
}
