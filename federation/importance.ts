// FedKSeed-Pro importance, as the reference defines it: every seed's history of |clip(g, ±1000)|
// starts with one 0 (server.py initialises it to [0]), and importance_j is the mean of that history:
//   importance_j = Σ|clip(g)| / (n_j + 1),   n_j = number of g committed for seed j.
// So an unused seed scores 0 and a seed used once with |g| = 50 scores 25. Kept as running sums so the
// state stays O(K).
import type { SeedGradient } from '../protocol';

export const IMPORTANCE_CLIP = 1000;

export function accumulateImportance(sum: Float64Array, count: Float64Array, pairs: readonly SeedGradient[]): void {
  for (const p of pairs) {
    sum[p.seed] += Math.min(Math.abs(p.g), IMPORTANCE_CLIP);
    count[p.seed] += 1;
  }
}

/** importance_j = sum_j / (count_j + 1): the mean over the history [0, |clip(g_1)|, …, |clip(g_n)|]. */
export function importanceOf(sum: Float64Array, count: Float64Array): Float64Array {
  return sum.map((s, j) => s / (count[j] + 1));
}
