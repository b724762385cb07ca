// The seed-probability series: K values decoded from base64 float32, sorted from most to least likely
// and reduced to at most `maxPoints` buckets, each keeping its highest, mean and lowest value, so
// K = 4096 stays readable and the chart's peak is the maximum the subtitle states.
import { seedBands, type SeedBand } from './series';

export interface SeedSummary {
  readonly k: number;
  readonly round: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  /** x: rank as a percentage of K (0–100); y: probabilities relative to uniform (p·K). */
  readonly bands: SeedBand[];
}

export function decodeFloat32Base64(base64: string): Float32Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new Float32Array(bytes.buffer, 0, Math.floor(bytes.length / 4));
}

export function summariseSeeds(round: number, base64: string, maxPoints = 512): SeedSummary {
  const p = decodeFloat32Base64(base64);
  const k = p.length;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const v of p) {
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  return { k, round, min: k > 0 ? min : 0, max: k > 0 ? max : 0, mean: sum / Math.max(1, k), bands: seedBands(p, maxPoints) };
}
