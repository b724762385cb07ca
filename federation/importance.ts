// FedKSeed-Pro importance: mean(|clip(g, ±1000)|) over every g committed for a seed; a seed never used
// counts as one 0. Kept as running sums so the state stays O(K).
import type { SeedGradient } from '../protocol';

export const IMPORTANCE_CLIP = 1000;

export function accumulateImportance(sum: Float64Array, count: Float64Array, pairs: readonly SeedGradient[]): void {
  for (const p of pairs) {
    sum[p.seed] += Math.min(Math.abs(p.g), IMPORTANCE_CLIP);
    count[p.seed] += 1;
  }
}

export function importanceOf(sum: Float64Array, count: Float64Array): Float64Array {
  return sum.map((s, j) => (count[j] > 0 ? s / count[j] : 0));
}
