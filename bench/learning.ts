// `fedkseed bench learning`: how fast local ZO training lowers the held-out loss with each perturbation
// shape, side by side in one run: the same model, data, batches, seeds, K, ε and steps, each shape with its
// own η (its stable rate differs). Reports the held-out loss change at every evaluation, ms per step, and
// each shape's change as a multiple of the first shape's (the paper's isotropic by default) at equal steps.
// Shaped passes cost what isotropic ones do, so equal steps are equal CPU time; ms/step is printed to show it.
import { loadDataset } from '../trainer/data/dataset';
import { openEngine } from '../trainer/engine';
import { runLocalTraining } from '../trainer/local-run';
import type { PerturbationShape } from '../trainer/zo/shape';
import { TRAINING_DEFAULTS } from '../contracts/defaults';

export interface LearningBenchArm {
  readonly shape: PerturbationShape;
  readonly eta: number;
}

export interface LearningBenchOptions {
  readonly data: string;
  readonly arms: readonly LearningBenchArm[];
  readonly steps: number;
  readonly evalEvery: number;
  readonly evalExamples: number;
  readonly k?: number;
  readonly threads?: number;
  readonly log?: (line: string) => void;
}

export interface LearningBenchRow extends LearningBenchArm {
  /** Held-out loss at each evaluation (the first is before training). */
  readonly curve: { readonly step: number; readonly loss: number }[];
  /** Last evaluated loss minus the first. */
  readonly change: number;
  /** The lowest evaluated loss minus the first. */
  readonly bestChange: number;
  readonly msPerStep: number;
  /** change ÷ the first arm's change. */
  readonly ratio: number;
  readonly diverged: string | null;
}

export interface LearningBenchResult {
  readonly data: string;
  readonly steps: number;
  readonly heldOutExamples: number;
  readonly rows: LearningBenchRow[];
}

export async function runLearningBench(o: LearningBenchOptions): Promise<LearningBenchResult> {
  const log = o.log ?? (() => {});
  const engine = await openEngine({ threads: o.threads });
  try {
    const data = await loadDataset(o.data, {
      tokenizer: engine.tokenizer,
      seqLen: TRAINING_DEFAULTS.seqLen,
      heldOutFraction: TRAINING_DEFAULTS.heldOutFraction,
    });
    const rows: LearningBenchRow[] = [];
    for (const arm of o.arms) {
      engine.params.rebuildFromBase();
      const curve: { step: number; loss: number }[] = [];
      const run = await runLocalTraining(
        engine,
        data,
        {
          steps: o.steps,
          k: o.k ?? TRAINING_DEFAULTS.k,
          federationSeed: TRAINING_DEFAULTS.federationSeed,
          epsilon: TRAINING_DEFAULTS.epsilon,
          eta: arm.eta,
          shape: arm.shape,
          batchSize: TRAINING_DEFAULTS.batchSize,
          seqLen: TRAINING_DEFAULTS.seqLen,
          evalEvery: o.evalEvery,
          evalExamples: o.evalExamples,
        },
        (e) => {
          if (e.type !== 'eval') return;
          curve.push({ step: e.step, loss: e.heldOut.loss });
          log(`${arm.shape} η ${arm.eta}: step ${e.step} held-out loss ${e.heldOut.loss.toFixed(4)}`);
        },
      );
      const start = curve[0]?.loss ?? Number.NaN;
      const finite = curve.filter((p) => Number.isFinite(p.loss));
      const change = (finite.at(-1)?.loss ?? Number.NaN) - start;
      const bestChange = Math.min(...finite.map((p) => p.loss)) - start;
      rows.push({ ...arm, curve, change, bestChange, msPerStep: run.stepMs, ratio: Number.NaN, diverged: run.diverged?.reason ?? null });
    }
    const first = rows[0]?.change ?? Number.NaN;
    return {
      data: o.data,
      steps: o.steps,
      heldOutExamples: Math.min(o.evalExamples, data.heldOut.length),
      rows: rows.map((r) => ({ ...r, ratio: r.change / first })),
    };
  } finally {
    await engine.close();
  }
}
