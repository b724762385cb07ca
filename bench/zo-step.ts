// One ZO step against two loss forwards on the same session and the same resident weights, interleaved
// as finely as possible: before each step's first forward, the model wrapper runs two extra forwards on
// the same batch and times them, so every step sits right next to its own reference pair (A B A B …).
// Steps are timed between consecutive onStep events of one train() call, so each interval holds exactly
// one steady-state step (the fused restore+update+next pass included) plus the reference pair, which
// is subtracted. The step is also taken apart in place: forwards, the two perturbation passes, batch
// construction, and what is left (JS and scheduling overhead).
import { BatchSampler, type TokenBatch } from '../trainer/data/batches';
import type { Example } from '../trainer/data/examples';
import { createRng } from '../trainer/data/rng';
import { SeedSampler } from '../trainer/zo/seed-sampler';
import { type BatchLoss, type PerturbationTarget, ZoTrainer } from '../trainer/zo/zo-trainer';

export interface ZoStepBenchOptions {
  readonly batch: number;
  readonly seq: number;
  readonly vocab: number;
  /** Steps measured, each with its reference pair of forwards (default 6). */
  readonly samples?: number;
  /** Waits until queued device work is done (device engines), before each reference pair is timed. */
  readonly sync?: () => Promise<void>;
}

export interface StepBreakdown {
  /** The step's own two forwards (L₊ and L₋). */
  readonly forwards: number;
  /** w −= 2εz: one seed. */
  readonly perturb: number;
  /** Restore+update of the previous seed fused with +εz of this one. */
  readonly perturb2: number;
  readonly batch: number;
  /** The step minus everything above: JS, promise and scheduling overhead. */
  readonly other: number;
}

export interface ZoStepTiming {
  readonly batch: number;
  readonly seq: number;
  /** Median of two back-to-back loss forwards (the reference pairs), ms. */
  readonly twoForwardsMs: number;
  /** Median steady-state ZO step, ms. */
  readonly stepMs: number;
  /** Median over samples of step / its own reference pair. */
  readonly ratio: number;
  readonly samples: number;
  /** Where a step's time goes (medians, ms, measured inside the steps). */
  readonly breakdown: StepBreakdown;
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

/** Per-step timings collected while train() runs; index i belongs to step i. */
class StepRecorder {
  readonly pair: number[] = [];
  readonly forwards: number[] = [];
  readonly perturb: number[] = [];
  readonly perturb2: number[] = [];
  readonly batch: number[] = [];
  readonly stamps: number[] = [];
  step = 0;

  add(list: number[], ms: number): void {
    list[this.step] = (list[this.step] ?? 0) + ms;
  }
}

/**
 * Times the passes train() makes, on the instance, until the returned function puts them back. A device
 * pass is timed until its run returns (submitted; the next forward waits for it, so step times stay right).
 */
function instrumentPasses(params: PerturbationTarget, rec: StepRecorder): () => void {
  const perturb = params.perturb;
  const perturb2 = params.perturb2;
  params.perturb = async (key, s) => {
    const t = nowMs();
    await perturb.call(params, key, s);
    rec.add(rec.perturb, nowMs() - t);
  };
  params.perturb2 = async (keyA, a, keyB, b) => {
    const t = nowMs();
    await perturb2.call(params, keyA, a, keyB, b);
    rec.add(rec.perturb2, nowMs() - t);
  };
  return () => {
    params.perturb = perturb;
    params.perturb2 = perturb2;
  };
}

/** `params`: a ParameterSet (host passes) or DeviceWeights (device passes); `session` the matching forward. */
export async function measureZoStep(params: PerturbationTarget, session: BatchLoss, options: ZoStepBenchOptions): Promise<ZoStepTiming> {
  const { batch, seq, vocab } = options;
  const samples = options.samples ?? 6;
  const sampler = new BatchSampler(syntheticExamples(Math.max(64, 4 * batch), seq, vocab), { batchSize: batch, seqLen: seq, padId: 0, seed: 5 });
  const seeds = new SeedSampler(4096, 11);
  const rec = new StepRecorder();
  let calls = 0;
  let withPairs = false;
  // The reference: two back-to-back forwards on this step's batch and weights, before L₊, read back as
  // the step reads its own (in one wait where the session can).
  const referencePair = async (b: TokenBatch): Promise<void> => {
    await options.sync?.();
    const t = nowMs();
    if (session.lossPair) await session.lossPair(b, async () => {});
    else {
      await session.lossSum(b);
      await session.lossSum(b);
    }
    rec.add(rec.pair, nowMs() - t);
  };
  const model: BatchLoss = {
    async lossSum(b: TokenBatch) {
      if (withPairs && calls % 2 === 0) await referencePair(b);
      calls++;
      const t = nowMs();
      const result = await session.lossSum(b);
      rec.add(rec.forwards, nowMs() - t);
      return result;
    },
  };
  const pairSession = session.lossPair?.bind(session);
  if (pairSession) {
    // A step with both losses in one read-back: the forwards are its time less the −2εz pass between them.
    model.lossPair = async (b, between) => {
      if (withPairs) await referencePair(b);
      let passMs = 0;
      const t = nowMs();
      const result = await pairSession(b, async () => {
        const p = nowMs();
        await between();
        passMs += nowMs() - p;
      });
      rec.add(rec.forwards, nowMs() - t - passMs);
      return result;
    };
  }
  const trainer = new ZoTrainer(params, model, { federationSeed: 7, k: 4096, epsilon: 1e-3, eta: 1e-6 });
  const nextBatch = (): TokenBatch => {
    const t = nowMs();
    const b = sampler.next();
    rec.add(rec.batch, nowMs() - t);
    return b;
  };

  // Warm-up: the first runs of a shape allocate and plan.
  await trainer.train({ steps: 2, seeds, nextBatch: () => sampler.next() });

  withPairs = true;
  calls = 0;
  const restore = instrumentPasses(params, rec);
  try {
    // One step more than sampled: the first has no fused pass before it (nothing owed yet).
    await trainer.train({
      steps: samples + 1,
      seeds,
      nextBatch,
      onStep: () => {
        rec.stamps.push(nowMs());
        rec.step++;
      },
    });
  } finally {
    restore();
  }

  const steps: number[] = [];
  const ratios: number[] = [];
  const parts = { forwards: [] as number[], perturb: [] as number[], perturb2: [] as number[], batch: [] as number[], other: [] as number[] };
  // Step i's interval runs from stamp i−1 to stamp i; the fused pass at its start is recorded under step i.
  for (let i = 1; i < rec.stamps.length; i++) {
    const step = rec.stamps[i] - rec.stamps[i - 1] - rec.pair[i];
    steps.push(step);
    ratios.push(step / rec.pair[i]);
    const known = { forwards: rec.forwards[i], perturb: rec.perturb[i], perturb2: rec.perturb2[i], batch: rec.batch[i] };
    parts.forwards.push(known.forwards);
    parts.perturb.push(known.perturb);
    parts.perturb2.push(known.perturb2);
    parts.batch.push(known.batch);
    parts.other.push(step - known.forwards - known.perturb - known.perturb2 - known.batch);
  }
  const pairs = rec.pair.slice(1, rec.stamps.length);
  return {
    batch,
    seq,
    twoForwardsMs: median(pairs),
    stepMs: median(steps),
    ratio: median(ratios),
    samples: steps.length,
    breakdown: {
      forwards: median(parts.forwards),
      perturb: median(parts.perturb),
      perturb2: median(parts.perturb2),
      batch: median(parts.batch),
      other: median(parts.other),
    },
  };
}
