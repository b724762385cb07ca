// A local ZO fine-tuning run (no federation) driven by the trainer host: loads the data, runs
// runLocalTraining and reports steps, evaluations and the (uniform) seed distribution. The run is
// checkpointed as it progresses (after each evaluation chunk, every `checkpointEvery` steps and at the
// end), and a run resumed from its checkpoint continues its step, batch and seed streams.
import { resolve } from 'node:path';
import type { Dataset } from '../data/dataset';
import type { Example } from '../data/examples';
import type { HeldOutMetrics } from '../eval/metrics';
import type { Engine } from '../engine';
import { runLocalTraining } from '../local-run';
import { applyCheckpoint, saveCheckpoint, type Checkpoint } from '../zo/checkpoint';
import { coefficientToReal } from '../zo/coefficients';
import type { HostNotifier } from './notifier';
import type { StartTrainingParams, TrainingResult } from '../../contracts/trainer-payloads';
import type { StatusReporter } from './status-reporter';

export interface LocalTrainingOutcome {
  readonly result: Omit<TrainingResult, 'weights'>;
  readonly checkpoint: Checkpoint;
}

/** Where a resumed run starts: the checkpoint already applied to the engine. */
export interface ResumePoint {
  readonly checkpoint: Checkpoint;
}

export async function trainLocally(
  engine: Engine,
  data: Dataset,
  params: StartTrainingParams,
  reporter: StatusReporter,
  notify: HostNotifier,
  signal: AbortSignal,
  onCheckpoint: (checkpoint: Checkpoint) => void = () => undefined,
  resume?: ResumePoint,
  /** Work that needs the weights at rest between two steps (completions' copy of them). */
  atRest?: () => (() => Promise<void>) | undefined,
  /** Measures beside the loss at each evaluation (top-1 accuracy, next-line exact match or Rouge-L). */
  metrics?: (examples: readonly Example[]) => Promise<HeldOutMetrics>,
): Promise<LocalTrainingOutcome> {
  const startStep = resume?.checkpoint.steps ?? 0;
  // A local run samples its seeds uniformly: show that distribution.
  notify.seedProbabilities(0, new Float32Array(params.k).fill(1 / params.k));
  reporter.update({
    state: 'training',
    step: startStep,
    detail: `${data.train.length} training / ${data.heldOut.length} held-out examples${startStep > 0 ? `; resumed at step ${startStep}` : ''}`,
  });
  const save = (checkpoint: Checkpoint): void => {
    if (params.checkpointPath) saveCheckpoint(params.checkpointPath, checkpoint);
    onCheckpoint(checkpoint);
  };
  const run = await runLocalTraining(
    engine,
    data,
    {
      steps: Math.max(0, params.steps - startStep),
      k: params.k,
      federationSeed: params.federationSeed,
      epsilon: params.epsilon,
      eta: params.eta,
      shape: params.shape ?? 'isotropic',
      generator: params.generator ?? 'iid',
      batchSize: params.batchSize,
      seqLen: params.data.seqLen,
      evalEvery: params.evalEvery,
      evalExamples: params.evalExamples,
      dataSplit: { heldOutFraction: params.data.heldOutFraction, include: params.data.include, data: resolve(params.data.path) },
      startStep,
      initial: resume ? new Map(Object.entries(resume.checkpoint.coefficients).map(([j, c]) => [Number(j), coefficientToReal(c)])) : undefined,
      checkpointEvery: params.checkpointEvery,
      onCheckpoint: save,
      signal,
      atRest,
      metrics,
    },
    (event) => {
      if (event.type === 'eval') {
        reporter.update({ heldOutLoss: event.heldOut.loss });
        notify.evaluation({ step: event.step, round: 0, heldOutLoss: event.heldOut.loss });
        const m = event.metrics;
        if (m) notify.metrics({ step: event.step, round: 0, accuracy: m.accuracy, exactMatch: m.exactMatch, rougeL: m.rougeL });
      } else if (event.type === 'diverged') {
        reporter.update({ detail: `stopped: the run diverged (${event.divergence.reason}); lower the learning rate (fedkseed.training.learningRate)` });
      } else if (!event.skipped) {
        reporter.step({ step: event.step + 1, round: 0, loss: (event.lossPlus + event.lossMinus) / 2 });
      }
    },
  );
  // A run with nothing left to do still leaves its checkpoint.
  if (run.stepsRun === 0) save(run.checkpoint);
  // The best evaluated point is what the run leaves: its checkpoint, and the weights held for export,
  // evaluation and completions (the last step's, when they were worse, are dropped).
  const best = run.best;
  const keepBest = (params.keep ?? 'best') === 'best' && best !== null && best.step !== startStep + run.stepsRun;
  if (keepBest) {
    applyCheckpoint(engine.params, best.checkpoint, engine.model.identity, "the run's best checkpoint");
    engine.weights.resetToBase();
    save(best.checkpoint);
  }
  return {
    checkpoint: keepBest ? best.checkpoint : run.checkpoint,
    result: {
      best: best && keepBest ? { step: best.step, loss: best.heldOut.loss } : null,
      diverged: run.diverged ? `${run.diverged.reason} at step ${run.diverged.step}` : null,
      stepsRun: run.stepsRun,
      skipped: run.skipped,
      heldOutBefore: run.before?.loss ?? null,
      heldOutAfter: run.after?.loss ?? null,
      stopped: signal.aborted,
      checkpointPath: params.checkpointPath ?? null,
      totalSteps: startStep + run.stepsRun,
    },
  };
}
