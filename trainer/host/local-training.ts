// A local ZO fine-tuning run (no federation) driven by the trainer host: loads the data, runs
// runLocalTraining and reports steps, evaluations and the (uniform) seed distribution.
import type { Dataset } from '../data/dataset';
import type { Engine } from '../engine';
import { runLocalTraining } from '../local-run';
import { saveCheckpoint, type Checkpoint } from '../zo/checkpoint';
import type { HostNotifier } from './notifier';
import type { StartTrainingParams, TrainingResult } from '../../contracts/trainer-payloads';
import type { StatusReporter } from './status-reporter';

export interface LocalTrainingOutcome {
  readonly result: TrainingResult;
  readonly checkpoint: Checkpoint;
}

export async function trainLocally(
  engine: Engine,
  data: Dataset,
  params: StartTrainingParams,
  reporter: StatusReporter,
  notify: HostNotifier,
  signal: AbortSignal,
): Promise<LocalTrainingOutcome> {
  // A local run samples its seeds uniformly: show that distribution.
  notify.seedProbabilities(0, new Float32Array(params.k).fill(1 / params.k));
  reporter.update({ state: 'training', detail: `${data.train.length} training / ${data.heldOut.length} held-out examples` });
  const run = await runLocalTraining(
    engine,
    data,
    {
      steps: params.steps,
      k: params.k,
      federationSeed: params.federationSeed,
      epsilon: params.epsilon,
      eta: params.eta,
      batchSize: params.batchSize,
      seqLen: params.data.seqLen,
      evalEvery: params.evalEvery,
      evalExamples: params.evalExamples,
      signal,
    },
    (event) => {
      if (event.type === 'eval') {
        reporter.update({ heldOutLoss: event.heldOut.loss });
        notify.evaluation({ step: event.step, round: 0, heldOutLoss: event.heldOut.loss });
      } else if (!event.skipped) {
        reporter.step({ step: event.step + 1, round: 0, loss: (event.lossPlus + event.lossMinus) / 2 });
      }
    },
  );
  if (params.checkpointPath) saveCheckpoint(params.checkpointPath, run.checkpoint);
  return {
    checkpoint: run.checkpoint,
    result: {
      stepsRun: run.stepsRun,
      skipped: run.skipped,
      heldOutBefore: run.before?.loss ?? null,
      heldOutAfter: run.after?.loss ?? null,
      stopped: signal.aborted,
      checkpointPath: params.checkpointPath ?? null,
    },
  };
}
