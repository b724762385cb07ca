// The seed-probability series: K values decoded from base64 float32, sorted from most to least likely
// and reduced to at most `maxPoints` (each point the mean of its bucket), so K = 4096 stays readable.
export interface SeedSummary {
  readonly k: number;
  readonly round: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  /** x: rank as a percentage of K (0–100); y: probability relative to uniform (p·K). */
  readonly points: { x: number; y: number }[];
}

export function decodeFloat32Base64(base64: string): Float32Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new Float32Array(bytes.buffer, 0, Math.floor(bytes.length / 4));
}

export function summariseSeeds(round: number, base64: string, maxPoints = 512): SeedSummary {
  const p = Array.from(decodeFloat32Base64(base64)).sort((a, b) => b - a);
  const k = p.length;
  const bucket = Math.max(1, Math.ceil(k / maxPoints));
  const points: { x: number; y: number }[] = [];
  for (let start = 0; start < k; start += bucket) {
    const slice = p.slice(start, start + bucket);
    const mean = slice.reduce((a, b) => a + b, 0) / slice.length;
    points.push({ x: (100 * (start + slice.length / 2)) / k, y: mean * k });
  }
  const sum = p.reduce((a, b) => a + b, 0);
  return { k, round, min: p[k - 1] ?? 0, max: p[0] ?? 0, mean: sum / Math.max(1, k), points };
}
