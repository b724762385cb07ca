// A deterministic LocalTrainer over a toy problem (a quadratic in d parameters with its own tiny
// counter-based perturbation), for tests, benchmarks and demos of the federation without a model.
// It honours the same exact-replica contract as the real engine: w = w0 − η·2^-28·Σ_j C_j·zq_j.
import { createHash } from 'node:crypto';
import type { FederationConfig, SparseCoefficientDelta } from '../protocol';
import type { LocalTrainer, StepProgress, TrainRoundRequest, TrainRoundResult } from '../federation/client/local-trainer';

function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Integer perturbation in −4096..4095 for (federation seed, seed index, parameter index). */
function zq(f: number, j: number, i: number): number {
  return (mix(mix(f ^ Math.imul(j + 1, 0x9e3779b9)) ^ Math.imul(i + 1, 0x9e3779b1)) & 0x1fff) - 4096;
}

/** The toy's base model w0: a fixed function of the parameter index. */
const baseWeight = (i: number): number => (mix(i + 7) / 2 ** 32) * 2 - 1;

export interface QuadraticToyTrainerOptions {
  readonly dimension: number;
  /** Distinguishes clients' data (their targets and sampling streams). */
  readonly clientSeed: number;
  readonly examplesPerStep?: number;
}

export class QuadraticToyTrainer implements LocalTrainer {
  readonly modelHash: Uint8Array;
  readonly generatorVersion = 1;
  private readonly w0: Float64Array;
  private readonly target: Float64Array;
  /** Σ_j C_j·zq_j per parameter: exact integers. */
  private readonly s: Float64Array;
  private eta = 0;

  constructor(private readonly options: QuadraticToyTrainerOptions) {
    const d = options.dimension;
    this.w0 = new Float64Array(d).map((_, i) => baseWeight(i));
    this.target = new Float64Array(d).map((_, i) => 0.5 + 0.1 * (mix(i * 31 + options.clientSeed * 977) / 2 ** 32 - 0.5));
    this.s = new Float64Array(d);
    this.modelHash = createHash('sha256').update(`quadratic-toy-${d}`).digest();
  }

  async applyCoefficientDelta(delta: SparseCoefficientDelta, config: FederationConfig): Promise<void> {
    this.eta = config.eta;
    for (let n = 0; n < delta.indices.length; n++) {
      const j = delta.indices[n];
      const c = delta.values[n];
      for (let i = 0; i < this.s.length; i++) this.s[i] += c * zq(config.federationSeed, j, i);
    }
  }

  async rebuildReplica(): Promise<void> {
    this.w0.forEach((_, i, w0) => (w0[i] = baseWeight(i)));
    this.s.fill(0);
  }

  replica(): Float32Array {
    const scale = -this.eta * 2 ** -28;
    return Float32Array.from(this.w0, (w, i) => w + scale * this.s[i]);
  }

  async digest(): Promise<string> {
    const h = createHash('sha256');
    h.update(Buffer.from(Float64Array.from(this.s).buffer));
    h.update(Buffer.from(this.replica().buffer));
    return h.digest('hex');
  }

  private loss(w: Float64Array): number {
    let sum = 0;
    for (let i = 0; i < w.length; i++) sum += (w[i] - this.target[i]) ** 2;
    return sum / w.length;
  }

  async trainRound(request: TrainRoundRequest, onStep?: (p: StepProgress) => void): Promise<TrainRoundResult> {
    const { config } = request;
    const w = Float64Array.from(this.replica());
    let state = mix(this.options.clientSeed * 0x10001 + request.round);
    const rand = (): number => (state = mix(state + 0x6d2b79f5)) / 2 ** 32;
    const cumulative = request.probabilities ? request.probabilities.reduce<number[]>((acc, p) => (acc.push((acc.at(-1) ?? 0) + p), acc), []) : null;
    const pick = (): number => {
      if (!cumulative) return Math.floor(rand() * config.k);
      const u = rand() * (cumulative.at(-1) ?? 1);
      let lo = 0;
      let hi = cumulative.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cumulative[mid] > u) hi = mid;
        else lo = mid + 1;
      }
      return lo;
    };
    const lossBefore = this.loss(w);
    const pairs: { seed: number; g: number }[] = [];
    const z = new Float64Array(w.length);
    for (let step = 0; step < request.steps; step++) {
      const seed = pick();
      for (let i = 0; i < w.length; i++) z[i] = zq(config.federationSeed, seed, i) / 4096;
      for (let i = 0; i < w.length; i++) w[i] += config.epsilon * z[i];
      const plus = this.loss(w);
      for (let i = 0; i < w.length; i++) w[i] -= 2 * config.epsilon * z[i];
      const minus = this.loss(w);
      const g = Math.fround((plus - minus) / (2 * config.epsilon));
      for (let i = 0; i < w.length; i++) w[i] += (config.epsilon - config.eta * g) * z[i];
      pairs.push({ seed, g });
      onStep?.({ round: request.round, step: step + 1, steps: request.steps, seed, g, loss: (plus + minus) / 2 });
    }
    const examples = request.steps * (this.options.examplesPerStep ?? config.batchSize);
    return { pairs, examples, lossBefore: { sum: lossBefore, count: 1 }, lossAfter: { sum: this.loss(w), count: 1 } };
  }
}
