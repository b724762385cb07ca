// One ZO step against two loss forwards on the same session and the same resident weights, measured
// interleaved (forward pairs, then steps, round after round) so machine noise hits both alike, and the
// step taken apart: forwards, the two perturbation passes, batch construction, and what is left (JS
// and scheduling overhead). Steps are timed between consecutive onStep events of one train() call, so
// each interval holds exactly one steady-state step, the fused restore+update+next pass included.
import { BatchSampler, type TokenBatch } from '../trainer/data/batches';
import type { Example } from '../trainer/data/examples';
import { createRng } from '../trainer/data/rng';
import type { ModelSession } from '../trainer/model/session';
import { seedKey } from '../trainer/zo/generator';
import type { ParameterSet } from '../trainer/zo/parameters';
import { SeedSampler } from '../trainer/zo/seed-sampler';
import { ZoTrainer } from '../trainer/zo/zo-trainer';

export interface ZoStepBenchOptions {
  readonly batch: number;
  readonly seq: number;
  readonly vocab: number;
  /** Interleaved rounds; each times `perRound` forward pairs, then `perRound` steps (default 3). */
  readonly rounds?: number;
  readonly perRound?: number;
}

export interface ZoStepTiming {
  readonly batch: number;
  readonly seq: number;
  /** Median of two consecutive loss forwards, ms. */
  readonly twoForwardsMs: number;
  /** Median steady-state ZO step, ms. */
  readonly stepMs: number;
  /** stepMs / twoForwardsMs. */
  readonly ratio: number;
  readonly forwardPairs: number;
  readonly steps: number;
  /** Where a step's time goes (medians, ms); `other` is the step minus the rest. */
  readonly breakdown: {
    readonly forwards: number;
    readonly perturb: number;
    readonly perturb2: number;
    readonly batch: number;
    readonly other: number;
  };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const nowMs = (): number => performance.now();

/** Full-length random windows: every row attends all seq tokens, as a packed code dataset does. */
function syntheticExamples(count: number, seq: number, vocab: number): Example[] {
  const rng = createRng(0xbe7c4);
  return Array.from({ length: count }, (_, n) => {
    const ids = new Int32Array(seq);
    for (let t = 0; t < seq; t++) ids[t] = rng.nextInt(vocab);
    return { id: `bench-${n}`, group: 'bench', splitKey: `bench-${n}`, ids };
  });
}

export async function measureZoStep(params: ParameterSet, session: ModelSession, options: ZoStepBenchOptions): Promise<ZoStepTiming> {
  const { batch, seq, vocab } = options;
  const rounds = options.rounds ?? 3;
  const perRound = options.perRound ?? 3;
  const sampler = new BatchSampler(syntheticExamples(Math.max(64, 4 * batch), seq, vocab), { batchSize: batch, seqLen: seq, padId: 0, seed: 5 });
  const fixed: TokenBatch = sampler.next();
  const trainer = new ZoTrainer(params, session, { federationSeed: 7, k: 4096, eps: 1e-3, eta: 1e-6 });
  const seeds = new SeedSampler(4096, 11);

  const forwardPair = async (): Promise<number> => {
    const start = nowMs();
    await session.lossSum(fixed);
    await session.lossSum(fixed);
    return nowMs() - start;
  };
  /** steps + 1 steps in one call; the first interval (no fused pass yet) and the final restore are left out. */
  const stepRun = async (steps: number): Promise<number[]> => {
    const stamps: number[] = [];
    await trainer.train({ steps: steps + 1, seeds, nextBatch: () => sampler.next(), onStep: () => stamps.push(nowMs()) });
    return stamps.slice(1).map((t, i) => t - stamps[i]);
  };

  // Warm-up: the first run of a shape allocates and plans.
  await forwardPair();
  await stepRun(1);

  const pairs: number[] = [];
  const steps: number[] = [];
  const perturbs: number[] = [];
  const fused: number[] = [];
  const batches: number[] = [];
  const keyA = seedKey(7, 1);
  const keyB = seedKey(7, 2);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < perRound; i++) pairs.push(await forwardPair());
    steps.push(...(await stepRun(perRound)));
    // The passes alone; each pair of calls cancels its own perturbation (up to rounding).
    let t = nowMs();
    params.perturb(keyA, 1e-3);
    perturbs.push(nowMs() - t);
    t = nowMs();
    params.perturb2(keyA, -1e-3, keyB, 1e-3);
    fused.push(nowMs() - t);
    params.perturb(keyB, -1e-3);
    t = nowMs();
    for (let i = 0; i < 4; i++) sampler.next();
    batches.push((nowMs() - t) / 4);
  }

  const twoForwardsMs = median(pairs);
  const stepMs = median(steps);
  const breakdown = { forwards: twoForwardsMs, perturb: median(perturbs), perturb2: median(fused), batch: median(batches), other: 0 };
  breakdown.other = stepMs - breakdown.forwards - breakdown.perturb - breakdown.perturb2 - breakdown.batch;
  return { batch, seq, twoForwardsMs, stepMs, ratio: stepMs / twoForwardsMs, forwardPairs: pairs.length, steps: steps.length, breakdown };
}
