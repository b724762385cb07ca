import { existsSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { openEngine } from '../../trainer/engine';
import { evaluateRougeL } from '../../trainer/eval/evaluate-rouge';
import { evaluateLoss } from '../../trainer/eval/loss';
import { metricsScorer } from '../../trainer/eval/metrics';
import { applyCheckpoint, type EvaluationSetup, loadCheckpoint } from '../../trainer/zo/checkpoint';
import { TRAINING_DEFAULTS } from '../../contracts/defaults';
import { CliError } from '../errors';
import {
  addDataOptions,
  addModelOptions,
  type DataCliOptions,
  engineOptions,
  existingPath,
  fraction,
  loadCliDataset,
  type ModelCliOptions,
  positiveInt,
  reportPrecision,
} from '../options';
import { emitJson, fixed, note, percent } from '../output';
import { describeReport } from '../../trainer/device/providers';
import { describeLocated } from '../../contracts/node/model-location';

interface EvalOptions extends ModelCliOptions, DataCliOptions {
  checkpoint?: string;
  split: 'held-out' | 'all';
  heldOut: number;
  maxExamples: number;
  rouge?: boolean;
  maxNewTokens: number;
  generationExamples: number;
  json?: boolean;
  /** The options given on the command line (the others are defaults a checkpoint's own setup may replace). */
  given: ReadonlySet<string>;
}

/** The options a checkpoint's evaluation setup decides unless the command line names them. */
const SETUP_OPTIONS = { data: '--data', seqLen: '--seq-len', heldOut: '--held-out', maxExamples: '--max-examples', include: '--include' } as const;

/**
 * Scores the examples a checkpoint's held-out loss was measured on (train's and simulate's windows, split
 * and file globs), so the loss `eval` prints is the one their reports show; options given on the command
 * line win. Returns the adopted options as command-line words, for the note that says so. A recorded
 * dataset that is not on this machine is refused rather than silently replaced by the default `--data .`.
 */
export function adoptEvaluationSetup(
  o: Pick<EvalOptions, 'data' | 'seqLen' | 'heldOut' | 'maxExamples' | 'include' | 'given' | 'split'>,
  setup: EvaluationSetup,
): string[] {
  const adopted: string[] = [];
  const take = <K extends keyof typeof SETUP_OPTIONS>(key: K, value: EvalOptions[K], shown: string): void => {
    if (o.given.has(key) || value === undefined || JSON.stringify(o[key]) === JSON.stringify(value)) return;
    (o as Pick<EvalOptions, K>)[key] = value;
    adopted.push(`${SETUP_OPTIONS[key]} ${shown}`);
  };
  if (setup.data !== undefined && !o.given.has('data')) {
    if (!existsSync(setup.data)) throw new CliError(`the checkpoint's held-out loss was measured on ${setup.data}, which is not here: give --data`);
    take('data', setup.data, setup.data);
  }
  take('seqLen', setup.seqLen, String(setup.seqLen));
  if (o.split === 'held-out') {
    take('heldOut', setup.heldOutFraction, String(setup.heldOutFraction));
    take('maxExamples', setup.examples, String(setup.examples));
  }
  take('include', setup.include, (setup.include ?? []).map((g) => `'${g}'`).join(' '));
  return adopted;
}

export function registerEval(program: Command): void {
  const cmd = program.command('eval').description('Held-out loss and perplexity (and Rouge-L for instruction data) of a model or a fine-tuned checkpoint');
  addModelOptions(cmd);
  addDataOptions(cmd)
    .option('--checkpoint <file>', 'evaluate base + these coefficients (from train or a federation)', existingPath('--checkpoint'))
    .addOption(
      new Option('--split <which>', 'examples to score: the held-out split that `fedkseed train` evaluates on (same --held-out, same rule), or all')
        .choices(['held-out', 'all'])
        .default('held-out'),
    )
    .option('--held-out <fraction>', 'held-out share for --split held-out: the one given to train', fraction, TRAINING_DEFAULTS.heldOutFraction)
    .option(
      '--max-examples <n>',
      "score the first n examples of the split (as many as train's --eval-examples, so the losses compare)",
      positiveInt,
      TRAINING_DEFAULTS.evalExamples,
    )
    .option('--rouge', 'also generate greedily and score Rouge-L against the references (instruction data)')
    .option('--max-new-tokens <n>', 'generation length for --rouge', positiveInt, 128)
    .option(
      '--generation-examples <n>',
      'examples completed for the next-line exact match (code) or Rouge-L (instruction data) beside the top-1 accuracy',
      positiveInt,
      16,
    )
    .option('--json', 'print one JSON object instead of text')
    .hook('preAction', (command) => {
      const given = Object.keys(SETUP_OPTIONS).filter((key) => ![undefined, 'default'].includes(command.getOptionValueSource(key)));
      command.setOptionValue('given', new Set(given));
    })
    .action((o: EvalOptions) => runEval(o));
}

async function runEval(o: EvalOptions): Promise<void> {
  const engine = await openEngine(engineOptions(o));
  reportPrecision(engine, o.json);
  try {
    // The model is named once, in the result's first line (the variant and tokenizer with it).
    if (o.checkpoint) {
      const checkpoint = loadCheckpoint(o.checkpoint);
      applyCheckpoint(engine.params, checkpoint, engine.model.identity, o.checkpoint);
      const adopted = checkpoint.evaluation ? adoptEvaluationSetup(o, checkpoint.evaluation) : [];
      if (adopted.length > 0) {
        if (adopted.some((a) => a.startsWith('--seq-len'))) o.seqLenGiven = true;
        if (!o.json) note(`scoring as the checkpoint's held-out loss was measured: ${adopted.join(' ')} (give an option to override it)`);
      }
    }
    const heldOut = o.split === 'held-out';
    const ds = await loadCliDataset(o, engine.tokenizer, heldOut ? o.heldOut : 0, engine.context);
    const pool = heldOut ? ds.heldOut : ds.train;
    const examples = pool.slice(0, o.maxExamples);
    if (examples.length === 0) {
      const skipped = ds.skipped.length ? ` (${ds.skipped.length} files skipped)` : '';
      throw new CliError(
        heldOut && ds.train.length > 0
          ? `no held-out examples in ${o.data} at --held-out ${o.heldOut}${skipped} (use --split all)`
          : `no examples to evaluate in ${o.data}${skipped}`,
      );
    }
    const loss = await evaluateLoss(engine.session, examples, { batchSize: o.batchSize, seqLen: o.seqLen, padId: engine.tokenizer.padId });
    const scored = {
      model: engine.modelPath,
      variant: engine.located.variant,
      parameters: engine.params.parameterCount,
      checkpoint: o.checkpoint ?? null,
      data: o.data,
      split: o.split,
      heldOut: heldOut ? o.heldOut : null,
      splitExamples: pool.length,
      seqLen: o.seqLen,
      include: o.include ?? null,
    };
    const result: Record<string, unknown> = { ...scored, loss: loss.loss, tokens: loss.tokens, perplexity: loss.perplexity, examples: examples.length };
    // Measures a person can read: next-token top-1 accuracy, and the next line exactly (code) or Rouge-L (instructions).
    const scorer = metricsScorer(engine, o.threads);
    try {
      const m = await scorer.score(examples, { generationExamples: o.generationExamples });
      Object.assign(result, { accuracy: m.accuracy, exactMatch: m.exactMatch, generated: m.generated });
      if (m.rougeL !== null) result.generationRougeL = m.rougeL;
    } finally {
      await scorer.release();
    }
    if (o.rouge) {
      const withRefs = examples.filter((e) => e.reference !== undefined);
      if (withRefs.length === 0) throw new CliError('--rouge needs instruction data with reference answers');
      const rouge = await evaluateRougeL(engine.generator, engine.tokenizer, withRefs, { maxNewTokens: o.maxNewTokens, batchSize: o.batchSize });
      result.rougeL = rouge.rougeL;
    }
    if (o.json) emitJson(result);
    else {
      // What was scored comes first: model, checkpoint and split decide the number.
      process.stdout.write(
        `${describeLocated(engine.located)}\n` +
          `${o.checkpoint ? `checkpoint ${o.checkpoint}` : 'base model'} (${engine.params.parameterCount.toLocaleString()} parameters, ${describeReport(engine.session.providerReport)})\n` +
          `data ${o.data}${o.include ? ` (${o.include.join(' ')})` : ''}, split ${heldOut ? `held-out (share ${o.heldOut})` : 'all'}: ${examples.length} of ${pool.length} examples of ${o.seqLen} tokens\n` +
          `loss ${fixed(loss.loss)}  perplexity ${fixed(loss.perplexity, 2)}  tokens ${loss.tokens}  examples ${examples.length}` +
          (typeof result.accuracy === 'number' ? `  top-1 ${percent(result.accuracy)}` : '') +
          (typeof result.exactMatch === 'number' ? `  next line ${percent(result.exactMatch)} (${result.generated as number} lines)` : '') +
          (typeof result.generationRougeL === 'number' ? `  rouge-l ${percent(result.generationRougeL)} (${result.generated as number} answers)` : '') +
          (result.rougeL !== undefined ? `  rouge-l ${percent(result.rougeL as number)}` : '') +
          '\n',
      );
    }
  } finally {
    await engine.close();
  }
}
