// Local ZO fine-tuning on one machine: the loop behind `fedkseed train` (and the extension's local
// training). Emits typed events; the fine-tuned model is saved as base identity + K coefficients.
import { BatchSampler } from './data/batches';
import type { Dataset } from './data/dataset';
import type { Example } from './data/examples';
import { followPerturbation, type Engine } from './engine';
import { evaluateLoss, NonFiniteLossError, type LossSummary } from './eval/loss';
import { DivergenceWatch, type Divergence } from './divergence';
import type { HeldOutMetrics } from './eval/metrics';
import { type Checkpoint, makeCheckpoint } from './zo/checkpoint';
import { quantizeCoefficient } from './zo/coefficients';
import { SeedSampler } from './zo/seed-sampler';
import { type StepEvent, ZoTrainer } from './zo/zo-trainer';
import { deriveSeed } from './data/rng';
import type { Generator } from '../protocol';
import type { PerturbationShape } from './zo/shape';

export interface LocalRunOptions {
  readonly steps: number;
  readonly k: number;
  readonly federationSeed: number;
  readonly epsilon: number;
  readonly eta: number;
  /** How z is scaled tensor by tensor (default 'isotropic', the paper's). */
  readonly shape?: PerturbationShape;
  /** How z is generated (default 'iid'). */
  readonly generator?: Generator;
  readonly batchSize: number;
  readonly seqLen: number;
  /** Evaluate held-out loss every this many steps (0: only before and after). */
  readonly evalEvery: number;
  /** Held-out examples used for evaluation (a fixed prefix, so evaluations compare). */
  readonly evalExamples: number;
  /**
   * How the data was split and read (the held-out share, the include globs): recorded in each checkpoint
   * with the window and the example count, so `fedkseed eval` scores the same examples.
   */
  readonly dataSplit?: {
    readonly heldOutFraction: number;
    readonly include?: readonly string[];
    /** Absolute path, recorded in the checkpoint. */ readonly data?: string;
  };
  /** Starting coefficients (continuing an earlier run), real-valued A_j by seed. */
  readonly initial?: ReadonlyMap<number, number>;
  /**
   * Steps the run already made (continuing it from a checkpoint): step numbers, the batch stream and the
   * seed stream continue from there, and the checkpoints count them. Default 0.
   */
  readonly startStep?: number;
  /** Also checkpoint every this many steps (0 or absent: after each evaluation chunk and at the end). */
  readonly checkpointEvery?: number;
  /** Receives the run's checkpoint as it progresses: after each chunk of steps and at the end, before the final evaluation. */
  readonly onCheckpoint?: (checkpoint: Checkpoint) => void;
  readonly signal?: AbortSignal;
  /** Work that needs the weights at rest, asked for between steps (see LocalTrainingOptions.atRest). */
  readonly atRest?: () => (() => Promise<void>) | undefined;
  /** Scores the held-out examples with measures beside the loss at each evaluation (weights at rest). */
  readonly metrics?: (examples: readonly Example[]) => Promise<HeldOutMetrics>;
}

/** The best evaluated point of a run: lowest held-out loss (the start counts), its step and coefficients. */
export interface BestPoint {
  readonly step: number;
  readonly heldOut: LossSummary;
  readonly checkpoint: Checkpoint;
}

export type LocalRunEvent =
  | { readonly type: 'eval'; readonly step: number; readonly heldOut: LossSummary; readonly metrics: HeldOutMetrics | null; readonly best: boolean }
  | { readonly type: 'diverged'; readonly divergence: Divergence }
  | ({ readonly type: 'step'; readonly ms: number } & StepEvent);

export interface LocalRunResult {
  readonly stepsRun: number;
  readonly skipped: number;
  /** Held-out loss before and after training; null without held-out data (nothing is evaluated). */
  readonly before: LossSummary | null;
  readonly after: LossSummary | null;
  /** The coefficients after the last step. */
  readonly checkpoint: Checkpoint;
  /** The evaluated point with the lowest held-out loss (null without held-out data). */
  readonly best: BestPoint | null;
  /** Set when the run stopped because it diverged (trainer/divergence.ts). */
  readonly diverged: Divergence | null;
  readonly stepMs: number;
}

export async function runLocalTraining(
  engine: Engine,
  data: Dataset,
  o: LocalRunOptions,
  onEvent: (e: LocalRunEvent) => void = () => {},
): Promise<LocalRunResult> {
  if (data.train.length === 0) throw new Error('the dataset has no training examples');
  // No held-out data (held-out share 0, or a single example) means a run without evaluations.
  const held = data.heldOut.slice(0, o.evalExamples);
  const evalOptions = { batchSize: o.batchSize, seqLen: o.seqLen, padId: engine.tokenizer.padId };
  let best: BestPoint | null = null;
  let lastEval: { step: number; heldOut: LossSummary } | null = null;
  let before: LossSummary | null = null;
  let diverged: Divergence | null = null;
  const watch = new DivergenceWatch();
  const stopped = new AbortController();
  const diverge = (step: number, reason: string | null): void => {
    if (reason === null || diverged) return;
    diverged = { step, reason };
    stopped.abort();
    onEvent({ type: 'diverged', divergence: diverged });
  };
  const evaluate = async (step: number): Promise<LossSummary | null> => {
    if (held.length === 0) return null;
    // A diverged model can score an infinite loss, which the accumulator refuses: that is a result here.
    const heldOut = await evaluateLoss(engine.session, held, evalOptions).catch((err: unknown): LossSummary => {
      if (err instanceof NonFiniteLossError) return { loss: Number.POSITIVE_INFINITY, perplexity: Number.POSITIVE_INFINITY, tokens: 0 };
      throw err;
    });
    const isBest = Number.isFinite(heldOut.loss) && (best === null || heldOut.loss < best.heldOut.loss);
    const metrics = o.metrics && Number.isFinite(heldOut.loss) ? await o.metrics(held) : null;
    if (isBest) best = { step, heldOut, checkpoint: checkpointNow() };
    lastEval = { step, heldOut };
    onEvent({ type: 'eval', step, heldOut, metrics, best: isBest });
    diverge(step, watch.heldOut(heldOut.loss, before?.loss ?? null));
    return heldOut;
  };
  const signal = o.signal ? AbortSignal.any([o.signal, stopped.signal]) : stopped.signal;

  const startStep = o.startStep ?? 0;
  const shape = o.shape ?? 'isotropic';
  const generator = o.generator ?? 'iid';
  followPerturbation(engine, { shape, generator });
  const trainer = new ZoTrainer(engine.weights, engine.session, { federationSeed: o.federationSeed, k: o.k, epsilon: o.epsilon, eta: o.eta });
  const batches = new BatchSampler(
    data.train,
    { batchSize: o.batchSize, seqLen: o.seqLen, padId: engine.tokenizer.padId, seed: deriveSeed(o.federationSeed, 'batches') },
    startStep,
  );
  const seeds = new SeedSampler(o.k, deriveSeed(o.federationSeed, 'seeds'));
  for (let i = 0; i < startStep; i++) seeds.next();
  const sums = new Map<number, number>(o.initial ?? []);
  const evaluation = o.dataSplit
    ? {
        seqLen: o.seqLen,
        heldOutFraction: o.dataSplit.heldOutFraction,
        examples: o.evalExamples,
        ...(o.dataSplit.include ? { include: [...o.dataSplit.include] } : {}),
        ...(o.dataSplit.data ? { data: o.dataSplit.data } : {}),
      }
    : undefined;
  const checkpointNow = (): Checkpoint => {
    const coefficients = new Float64Array(o.k);
    for (const [seed, a] of sums) coefficients[seed] = quantizeCoefficient(a);
    return makeCheckpoint(
      {
        baseModel: engine.model.identity,
        federationSeed: o.federationSeed,
        k: o.k,
        eta: o.eta,
        epsilon: o.epsilon,
        shape,
        ...(generator === 'iid' ? {} : { generator }),
      },
      coefficients,
      {
        steps: startStep + stepsRun,
        ...(evaluation ? { evaluation } : {}),
      },
    );
  };

  let stepsRun = 0;
  before = await evaluate(startStep);
  let skipped = 0;
  let trainMs = 0;
  /** The next multiple of `every` after `done` (the run's end when `every` is 0). */
  const nextBoundary = (every: number, done: number) => (every > 0 ? (Math.floor(done / every) + 1) * every : Infinity);
  while (stepsRun < o.steps && !signal.aborted) {
    const done = startStep + stepsRun;
    const nextEval = nextBoundary(o.evalEvery, done);
    const until = Math.min(nextEval, nextBoundary(o.checkpointEvery ?? 0, done), startStep + o.steps);
    let last = performance.now();
    const started = last;
    const r = await trainer.train({
      steps: until - done,
      seeds,
      nextBatch: () => batches.next(),
      signal,
      atRest: o.atRest,
      onStep: (e) => {
        diverge(done + e.step, watch.step(e));
        const now = performance.now();
        onEvent({ type: 'step', ...e, step: done + e.step, ms: now - last });
        last = now;
      },
    });
    trainMs += performance.now() - started;
    for (const { seed, g } of r.pairs) sums.set(seed, (sums.get(seed) ?? 0) + g);
    stepsRun += r.stepsRun;
    skipped += r.skipped;
    o.onCheckpoint?.(checkpointNow());
    if (stepsRun < o.steps && !signal.aborted && startStep + stepsRun === nextEval) await evaluate(startStep + stepsRun);
  }
  const checkpoint = checkpointNow();
  // The last evaluation may already be of these weights (a run stopped by its held-out loss).
  // (TypeScript cannot see that the evaluate closure assigns lastEval.)
  const evaluated = lastEval as { step: number; heldOut: LossSummary } | null;
  const after = evaluated?.step === startStep + stepsRun ? evaluated.heldOut : await evaluate(startStep + stepsRun);

  return { stepsRun, skipped, before, after, checkpoint, best, diverged, stepMs: stepsRun > 0 ? trainMs / stepsRun : Number.NaN };
}
