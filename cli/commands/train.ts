import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { GENERATORS, PERTURBATION_SHAPES, type Generator, type PerturbationShape } from '../../protocol';
import { openEngine, pullWorkingWeights } from '../../trainer/engine';
import { runLocalTraining, type LocalRunEvent, type LocalRunResult } from '../../trainer/local-run';
import { metricsScorer } from '../../trainer/eval/metrics';
import type { Example } from '../../trainer/data/examples';
import { applyCheckpoint, loadCheckpoint, saveCheckpoint } from '../../trainer/zo/checkpoint';
import { coefficientToReal } from '../../trainer/zo/coefficients';
import { TRAINING_DEFAULTS } from '../../contracts/defaults';
import { CliError } from '../errors';
import { checkExportFolder, exportWithTokenizer } from './export';
import { suggest } from '../invocation';
import {
  addDataOptions,
  addModelOptions,
  loadCliDataset,
  type DataCliOptions,
  engineOptions,
  existingPath,
  fraction,
  hyperparameterArg,
  type ModelCliOptions,
  nonNegativeInt,
  positiveInt,
  reportModel,
  seedCount,
  uint32,
  writableFile,
} from '../options';
import type { TrainEvent } from '../../contracts/cli-events';
import { emitJson, fixed, note, percent } from '../output';
import { formatEta } from '../../contracts/run-figures';
import { describeReport } from '../../trainer/device/providers';
import { addMemoryOption, memoryEngineOptions, type MemoryCliOptions } from '../memory-option';

interface TrainOptions extends ModelCliOptions, DataCliOptions, MemoryCliOptions {
  steps: number;
  k: number;
  seed: number;
  epsilon: number;
  eta: number;
  shape: PerturbationShape;
  generator: Generator;
  keep: 'best' | 'last';
  heldOut: number;
  evalEvery: number;
  evalExamples: number;
  out: string;
  from?: string;
  export?: string;
  requantize?: boolean;
  measures?: boolean;
  force?: boolean;
  json?: boolean;
}

export function registerTrain(program: Command): void {
  const cmd = program.command('train').description('Local zeroth-order fine-tuning with K shared seeds; saves the result as base model + K coefficients');
  addModelOptions(cmd);
  addMemoryOption(cmd);
  addDataOptions(cmd, '.')
    .option('--steps <n>', 'ZO steps', positiveInt, TRAINING_DEFAULTS.steps)
    .option('-k, --k <n>', 'number of shared seeds K (at most 65,536)', seedCount, TRAINING_DEFAULTS.k)
    .option('--seed <n>', 'federation seed: which K perturbation directions exist', uint32, TRAINING_DEFAULTS.federationSeed)
    .option('--epsilon <x>', 'perturbation scale ε', hyperparameterArg('epsilon'), TRAINING_DEFAULTS.epsilon)
    .option('--eta <x>', 'learning rate η', hyperparameterArg('eta'), TRAINING_DEFAULTS.eta)
    .addOption(
      new Option('--shape <name>', "how z is scaled tensor by tensor: tensor-rms (by each tensor's scale) or isotropic (the paper's)")
        .choices(PERTURBATION_SHAPES)
        .default(TRAINING_DEFAULTS.shape),
    )
    .addOption(
      new Option(
        '--generator <name>',
        "how z is generated: iid (every parameter hashed, the paper's) or rank1 (each matrix's z an outer product u·vᵀ: rounds apply faster at scale)",
      )
        .choices(GENERATORS)
        .default(TRAINING_DEFAULTS.generator),
    )
    .addOption(
      new Option('--keep <which>', "what --out holds: the best evaluated point (the start counts) or the last step's coefficients; the other goes beside it")
        .choices(['best', 'last'])
        .default(TRAINING_DEFAULTS.keep),
    )
    .option(
      '--held-out <fraction>',
      'share of the data held out for evaluation, at least one file when above 0 (0: train on all of it and evaluate nothing)',
      fraction,
      TRAINING_DEFAULTS.heldOutFraction,
    )
    .option('--eval-every <n>', 'evaluate held-out loss every n steps (0: before and after only)', nonNegativeInt, TRAINING_DEFAULTS.evalEvery)
    .option('--eval-examples <n>', 'held-out examples per evaluation (the first n; eval scores as many)', positiveInt, TRAINING_DEFAULTS.evalExamples)
    .option(
      '--out <file>',
      'where to write the coefficients checkpoint (its folder must exist; an existing one is kept unless --from names it or --force)',
      writableFile('--out'),
      'fedkseed-checkpoint.json',
    )
    .option('--force', 'replace an existing --out checkpoint, and tokenizer or config files of another model beside --export')
    .option('--from <file>', 'continue from an earlier checkpoint of the same base model', existingPath('--from'))
    .option('--export <file>', 'also write the fine-tuned model as a standalone ONNX file')
    .option('--requantize', "with --export: write quantized weights in the model's own scheme, not as float32 (docs/models.md)")
    .option('--measures', 'also score the held-out top-1 accuracy and next-line exact match (Rouge-L for instruction data) at each evaluation')
    .option('--json', 'print progress as JSON lines')
    .action((o: TrainOptions) => runTrain(o));
}

/** What an existing checkpoint holds, for the refusal to replace it: " (a 200-step checkpoint, K=4096)". */
function describeExisting(file: string): string {
  try {
    const c = loadCheckpoint(file);
    return ` (a ${c.steps !== undefined ? `${c.steps}-step ` : c.round !== undefined ? `round-${c.round} federation ` : ''}checkpoint, K=${c.k})`;
  } catch {
    return ' (not a fedkseed checkpoint)';
  }
}

/** Training replaces --out only when it continues that same checkpoint (--from names it) or is told to. */
function checkOut(o: TrainOptions): void {
  if (o.force || !existsSync(o.out)) return;
  if (o.from !== undefined && resolve(o.from) === resolve(o.out)) return;
  throw new CliError(
    `${o.out} already exists${describeExisting(o.out)} and training would replace it: pass --out <other file> to keep it, --from ${o.out} to continue it, or --force to replace it`,
  );
}

async function runTrain(o: TrainOptions): Promise<void> {
  checkOut(o);
  if (o.batchSize > 64) note(`note: batch size ${o.batchSize} makes every ZO step slow; FedKSeed uses small batches`);
  const engine = await openEngine({ ...engineOptions(o), ...memoryEngineOptions(o) });
  reportModel(engine, o.json);
  const abort = new AbortController();
  const onSignal = () => {
    note('stopping after the current step (press Ctrl-C again to force)…');
    abort.abort();
    process.once('SIGINT', () => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  try {
    if (o.export) checkExportFolder(engine, o.export, o.force, '--export');
    let initial: Map<number, number> | undefined;
    let earlierSteps = 0;
    if (o.from) {
      const start = loadCheckpoint(o.from);
      earlierSteps = start.steps ?? 0;
      const startShape = start.shape ?? 'isotropic';
      const startGenerator = start.generator ?? 'iid';
      if (start.k !== o.k || start.federationSeed !== o.seed || start.eta !== o.eta || startShape !== o.shape || startGenerator !== o.generator) {
        throw new CliError(
          `--from ${o.from} was trained with K=${start.k}, seed=${start.federationSeed}, η=${start.eta}, shape ${startShape}, generator ${startGenerator}; pass the same --k, --seed, --eta, --shape and --generator to continue it`,
        );
      }
      applyCheckpoint(engine.params, start, engine.model.identity, o.from);
      initial = new Map(Object.entries(start.coefficients).map(([j, c]) => [Number(j), coefficientToReal(c)]));
    }
    const data = await loadCliDataset(o, engine.tokenizer, o.heldOut, engine.context);
    if (o.json)
      emitJson({
        event: 'start',
        model: engine.modelPath,
        parameters: engine.params.parameterCount,
        kernel: engine.params.kernel,
        provider: engine.session.executionProvider,
        train: data.train.length,
        heldOut: data.heldOut.length,
      } satisfies TrainEvent);
    else
      note(
        `${engine.params.parameterCount.toLocaleString()} parameters · ${data.train.length} training / ${data.heldOut.length} held-out examples · kernel ${engine.params.kernel} · ${describeReport(engine.session.providerReport)}`,
      );
    if (data.heldOut.length === 0 && !o.json)
      note(
        o.heldOut === 0
          ? 'no held-out set (--held-out 0): training on every example, no evaluation'
          : 'no held-out set: a single example cannot be split, so it trains and nothing is evaluated',
      );

    const report = progressPrinter(o, earlierSteps);
    const scorer = o.measures ? metricsScorer(engine, o.threads) : null;
    const result = await runLocalTraining(
      engine,
      data,
      {
        steps: o.steps,
        k: o.k,
        federationSeed: o.seed,
        epsilon: o.epsilon,
        eta: o.eta,
        shape: o.shape,
        generator: o.generator,
        batchSize: o.batchSize,
        seqLen: o.seqLen,
        evalEvery: o.evalEvery,
        evalExamples: o.evalExamples,
        dataSplit: { heldOutFraction: o.heldOut, include: o.include, data: resolve(o.data) },
        initial,
        startStep: earlierSteps,
        signal: abort.signal,
        ...(scorer ? { metrics: (examples: readonly Example[]) => scorer.score(examples) } : {}),
      },
      report,
    ).finally(() => scorer?.release());
    // --out holds the best evaluated point (the start counts, so a run that only got worse keeps the model it
    // started from); the last step's coefficients go beside it when they differ.
    const best = result.best;
    const last = result.checkpoint;
    const bestIsLast = best === null || best.step === earlierSteps + result.stepsRun || o.keep === 'last';
    const lastFile = bestIsLast ? null : companionPath(o.out, 'last');
    saveCheckpoint(o.out, bestIsLast ? last : best.checkpoint);
    if (lastFile) saveCheckpoint(lastFile, last);
    // --keep last: the best point, when it is another, goes beside --out.
    if (o.keep === 'last' && best !== null && best.step !== last.steps) saveCheckpoint(companionPath(o.out, 'best'), best.checkpoint);
    let exported: string | undefined;
    if (o.export) {
      // The best point's replica, or the weights trained to the last step.
      if (bestIsLast) await pullWorkingWeights(engine);
      else applyCheckpoint(engine.params, best.checkpoint, engine.model.identity, o.out);
      const { replaced } = exportWithTokenizer(engine, o.export, { requantize: o.requantize });
      if (replaced.length > 0 && !o.json) note(`replaced ${replaced.join(', ')} beside ${o.export} with the model's own (--force)`);
      exported = o.export;
    }
    const before = result.before?.loss ?? null;
    const after = result.after?.loss ?? null;
    const diverged = result.diverged ? `${result.diverged.reason} at step ${result.diverged.step}; lower --eta (it was ${o.eta})` : null;
    const summary = {
      event: 'done',
      steps: result.stepsRun,
      skipped: result.skipped,
      heldOutBefore: before,
      heldOutAfter: after,
      msPerStep: result.stepMs,
      best: best ? { step: best.step, loss: best.heldOut.loss } : null,
      checkpoint: o.out,
      lastCheckpoint: lastFile,
      exported: exported ?? null,
      stopped: abort.signal.aborted,
      diverged,
    } satisfies TrainEvent;
    if (diverged) process.exitCode = 1;
    if (o.json) emitJson(summary);
    else {
      const loss = before === null || after === null ? 'no held-out evaluation' : `held-out loss ${fixed(before)} → ${fixed(after)}`;
      process.stdout.write(`${loss} after ${result.stepsRun} steps (${fixed(result.stepMs, 1)} ms/step)\n`);
      if (o.keep === 'last')
        process.stdout.write(`${diverged ? `stopped: the run diverged (${diverged})\n` : ''}checkpoint ${o.out}: the last step (--keep last)\n`);
      else for (const line of outcomeLines(result, earlierSteps, o.out, lastFile, diverged)) process.stdout.write(`${line}\n`);
      if (exported) process.stdout.write(`model ${exported}${bestIsLast ? '' : ` (the best checkpoint, step ${best.step})`}\n`);
      else note(`export the model: ${suggest(`export --checkpoint ${o.out} --out model.onnx`)}`);
    }
  } finally {
    process.off('SIGINT', onSignal);
    await engine.close();
  }
}

/** The checkpoint beside --out that holds the other point: run.json → run.last.json (or run.best.json). */
export function companionPath(out: string, which: 'last' | 'best'): string {
  return /\.json$/i.test(out) ? out.replace(/\.json$/i, `.${which}.json`) : `${out}.${which}.json`;
}

/** What the run's outcome means for the user: which checkpoint holds what, and a warning when it got worse. */
function outcomeLines(result: LocalRunResult, earlierSteps: number, out: string, lastFile: string | null, diverged: string | null): string[] {
  const lines: string[] = [];
  const { best, before } = result;
  if (diverged) lines.push(`stopped: the run diverged (${diverged})`);
  if (best === null) return [...lines, `checkpoint ${out}`];
  if (before !== null && best.step === earlierSteps) {
    lines.push(
      `warning: the held-out loss never went below where the run started (${fixed(before.loss)}); ${out} keeps the starting point. Try a lower --eta, more steps or more data.`,
    );
  } else {
    lines.push(
      `checkpoint ${out}: the best held-out loss, ${fixed(best.heldOut.loss)} at step ${best.step}${before !== null ? ` (${fixed(best.heldOut.loss - before.loss)} nats from the start)` : ''}`,
    );
  }
  if (lastFile) lines.push(`the last step's coefficients: ${lastFile}${result.after ? ` (held-out loss ${fixed(result.after.loss)})` : ''}`);
  return lines;
}

function progressPrinter(o: TrainOptions, earlierSteps: number): (e: LocalRunEvent) => void {
  const every = Math.max(1, Math.round(o.steps / 20));
  const lastStep = earlierSteps + o.steps;
  let window = 0;
  let count = 0;
  // The pace of this process, from its first step (evaluations between steps included, as they will
  // recur): steps a continued run made before do not count as work done here.
  let since: number | null = null;
  const timeLeft = (step: number, ms: number): string => {
    const now = performance.now();
    since ??= now - ms;
    const done = step + 1 - earlierSteps;
    const elapsed = (now - since) / 1000;
    return done >= 2 && elapsed > 0 ? `  ${formatEta(((lastStep - step - 1) * elapsed) / done)}` : '';
  };
  return (e) => {
    if (e.type === 'diverged') {
      if (o.json) emitJson({ event: 'diverged', step: e.divergence.step, reason: e.divergence.reason } satisfies TrainEvent);
      else note(`step ${e.divergence.step}: ${e.divergence.reason}: the run diverged and stops (lower --eta)`);
      return;
    }
    if (e.type === 'eval') {
      const m = e.metrics;
      if (o.json)
        emitJson({
          event: 'eval',
          step: e.step,
          loss: e.heldOut.loss,
          perplexity: e.heldOut.perplexity,
          tokens: e.heldOut.tokens,
          ...(m ? { accuracy: m.accuracy, exactMatch: m.exactMatch, rougeL: m.rougeL } : {}),
        } satisfies TrainEvent);
      else {
        const measured = m
          ? `  top-1 ${percent(m.accuracy)}  ${m.rougeL !== null ? `rouge-l ${percent(m.rougeL)}` : `next line ${percent(m.exactMatch)}`}`
          : '';
        note(
          `step ${String(e.step).padStart(6)}  held-out loss ${fixed(e.heldOut.loss)}  ppl ${fixed(e.heldOut.perplexity, 2)}${measured}${e.best ? '  (best so far)' : ''}`,
        );
      }
      return;
    }
    if (o.json) {
      emitJson({
        event: 'step',
        step: e.step,
        seed: e.seed,
        g: e.g,
        lossPlus: e.lossPlus,
        lossMinus: e.lossMinus,
        skipped: e.skipped,
        ms: e.ms,
      } satisfies TrainEvent);
      return;
    }
    const left = timeLeft(e.step, e.ms);
    if (e.skipped) note(`step ${e.step}: loss was not finite; step skipped`);
    else {
      window += (e.lossPlus + e.lossMinus) / 2;
      count++;
    }
    if ((e.step + 1) % every === 0 && count > 0) {
      note(
        `step ${String(e.step + 1).padStart(6)}/${lastStep}  train loss ${fixed(window / count)}  ${fixed(e.ms, 0)} ms/step${e.step + 1 < lastStep ? left : ''}`,
      );
      window = 0;
      count = 0;
    }
  };
}
