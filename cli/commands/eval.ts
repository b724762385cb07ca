import { type Command, Option } from 'commander';
import { openEngine } from '../../trainer/engine';
import { evaluateRougeL } from '../../trainer/eval/evaluate-rouge';
import { evaluateLoss } from '../../trainer/eval/loss';
import { applyCheckpoint, loadCheckpoint } from '../../trainer/zo/checkpoint';
import { CliError } from '../errors';
import { addDataOptions, addModelOptions, loadCliDataset, type DataCliOptions, engineOptions, fraction, type ModelCliOptions, positiveInt } from '../options';
import { emitJson, fixed, note } from '../output';

interface EvalOptions extends ModelCliOptions, DataCliOptions {
  checkpoint?: string;
  split: 'all' | 'held-out';
  heldOut: number;
  maxExamples?: number;
  rouge?: boolean;
  maxNewTokens: number;
  json?: boolean;
}

export function registerEval(program: Command): void {
  const cmd = program.command('eval').description('Held-out loss and perplexity (and Rouge-L for instruction data) of a model or a fine-tuned checkpoint');
  addModelOptions(cmd);
  addDataOptions(cmd)
    .option('--checkpoint <file>', 'evaluate base + these coefficients (from train or a federation)')
    .addOption(new Option('--split <which>', 'examples to evaluate').choices(['all', 'held-out']).default('all'))
    .option('--held-out <fraction>', 'held-out share when --split held-out', fraction, 0.1)
    .option('--max-examples <n>', 'evaluate at most this many examples', positiveInt)
    .option('--rouge', 'also generate greedily and score Rouge-L against the references (instruction data)')
    .option('--max-new-tokens <n>', 'generation length for --rouge', positiveInt, 128)
    .option('--json', 'print one JSON object instead of text')
    .action((o: EvalOptions) => runEval(o));
}

async function runEval(o: EvalOptions): Promise<void> {
  const engine = await openEngine(engineOptions(o));
  try {
    if (o.checkpoint) applyCheckpoint(engine.params, loadCheckpoint(o.checkpoint), engine.model.identity, o.checkpoint);
    const ds = await loadCliDataset(o, engine.tokenizer, o.split === 'all' ? 0 : o.heldOut);
    let examples = o.split === 'all' ? ds.train : ds.heldOut;
    if (o.maxExamples) examples = examples.slice(0, o.maxExamples);
    if (examples.length === 0) throw new CliError(`no examples to evaluate in ${o.data}${ds.skipped.length ? ` (${ds.skipped.length} files skipped)` : ''}`);
    const loss = await evaluateLoss(engine.session, examples, { batchSize: o.batchSize, seqLen: o.seqLen, padId: engine.tokenizer.padId });
    const result: Record<string, unknown> = { loss: loss.loss, tokens: loss.tokens, perplexity: loss.perplexity, examples: examples.length };
    if (o.rouge) {
      const withRefs = examples.filter((e) => e.reference !== undefined);
      if (withRefs.length === 0) throw new CliError('--rouge needs instruction data with reference answers');
      const rouge = await evaluateRougeL(engine.session, engine.tokenizer, withRefs, { maxNewTokens: o.maxNewTokens, batchSize: o.batchSize });
      result.rougeL = rouge.rougeL;
    }
    if (o.json) emitJson(result);
    else {
      note(`model ${engine.modelPath} (${engine.params.parameterCount.toLocaleString()} parameters, ${engine.session.executionProvider})`);
      process.stdout.write(`loss ${fixed(loss.loss)}  perplexity ${fixed(loss.perplexity, 2)}  tokens ${loss.tokens}  examples ${examples.length}` +
        (result.rougeL !== undefined ? `  rouge-l ${fixed(result.rougeL as number)}` : '') + '\n');
    }
  } finally {
    await engine.close();
  }
}
