// `fedkseed generate`: what fine-tuning changed, in text. The same prompt (given, or a file cut after a
// line) is completed greedily by the base model and by base + a checkpoint's coefficients, one after the
// other on one engine, and both are printed side by side with each one's loss on what followed the prompt
// in the file, when there is such a continuation. Greedy decoding: the same output every time.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { openEngine, type Engine } from '../../trainer/engine';
import { greedyGenerate } from '../../trainer/model/generate';
import { requireEos } from '../../trainer/data/tokenizer';
import { collate } from '../../trainer/data/batches';
import { applyCheckpoint, loadCheckpoint } from '../../trainer/zo/checkpoint';
import { CliError } from '../errors';
import { addModelOptions, engineOptions, existingPath, type ModelCliOptions, positiveInt, reportModel } from '../options';
import { emitJson, fixed, note } from '../output';
import { suggest } from '../invocation';
import { errorMessage } from '../../protocol/errors';

interface GenerateOptions extends ModelCliOptions {
  prompt?: string;
  file?: string;
  line?: number;
  checkpoint: string;
  maxTokens: number;
  json?: boolean;
}

/** Tokens of the file's continuation scored after the prompt (the loss columns). */
const CONTINUATION_TOKENS = 64;

export function registerGenerate(program: Command): void {
  addModelOptions(
    program
      .command('generate')
      .description(
        'complete a prompt (or a file after a given line) with the base model and with a fine-tuned checkpoint, side by side (greedy: the same output every time)',
      ),
  )
    .option('--prompt <text>', 'the text to complete')
    .option('--file <path>', 'complete this file after --line (its continuation is also scored)', existingPath('--file'))
    .option('--line <n>', 'with --file: the prompt ends with this line (1-based; default: the middle of the file)', positiveInt)
    .option('--checkpoint <file>', 'the fine-tuned coefficients (from train or a federation)', 'fedkseed-checkpoint.json')
    .option('--max-tokens <n>', 'new tokens per completion', positiveInt, 48)
    .option('--json', 'print the result as one JSON object')
    .action((o: GenerateOptions) => runGenerate(o));
}

interface Completion {
  readonly text: string;
  readonly finish: string;
  /** Mean loss (nats/token) of the file's continuation after the prompt, or null without one. */
  readonly continuationLoss: number | null;
}

async function runGenerate(o: GenerateOptions): Promise<void> {
  if ((o.prompt === undefined) === (o.file === undefined)) throw new CliError('give the text to complete: --prompt <text> or --file <path> [--line <n>]');
  let checkpoint;
  try {
    checkpoint = loadCheckpoint(o.checkpoint);
  } catch (err) {
    throw new CliError(`${errorMessage(err)}; train one first (${suggest('train --data <folder>')}) or pass --checkpoint <file>`);
  }
  const { prompt, continuation } = promptOf(o);
  const engine = await openEngine(engineOptions(o));
  try {
    reportModel(engine, o.json);
    const base = await complete(engine, prompt, continuation, o.maxTokens);
    applyCheckpoint(engine.params, checkpoint, engine.model.identity, o.checkpoint);
    const tuned = await complete(engine, prompt, continuation, o.maxTokens);
    const origin =
      checkpoint.round !== undefined ? `round ${checkpoint.round}` : checkpoint.steps !== undefined ? `step ${checkpoint.steps}` : 'its coefficients';
    if (o.json) {
      emitJson({ prompt, checkpoint: o.checkpoint, base, fineTuned: tuned });
      return;
    }
    const show = (title: string, c: Completion): void => {
      const loss = c.continuationLoss === null ? '' : `  (the file's next ${CONTINUATION_TOKENS} tokens: loss ${fixed(c.continuationLoss)})`;
      process.stdout.write(`── ${title}${loss}\n${c.text}\n`);
    };
    process.stdout.write(`── prompt (last lines)\n${prompt.split('\n').slice(-4).join('\n')}\n`);
    show('base model', base);
    show(`fine-tuned (${o.checkpoint}, ${origin})`, tuned);
    if (base.text === tuned.text) note('the two completions are the same: fine-tuning has not changed the greedy choice here');
  } finally {
    await engine.close();
  }
}

/** The prompt, and what followed it in the file (for the loss columns). */
function promptOf(o: GenerateOptions): { prompt: string; continuation: string } {
  if (o.prompt !== undefined) return { prompt: o.prompt, continuation: '' };
  const text = readFileSync(o.file as string, 'utf8');
  const lines = text.split('\n');
  const line = o.line ?? Math.max(1, Math.floor(lines.length / 2));
  if (line > lines.length) throw new CliError(`--line ${line}: ${o.file} has ${lines.length} lines`);
  const prompt = `${lines.slice(0, line).join('\n')}\n`;
  return { prompt, continuation: text.slice(prompt.length) };
}

async function complete(engine: Engine, prompt: string, continuation: string, maxTokens: number): Promise<Completion> {
  const { tokenizer } = engine;
  const eosId = requireEos(tokenizer, 'completions');
  const limit = engine.context ?? 1024;
  // The prompt's last tokens, leaving room for the new ones.
  const ids = tokenizer.encode(prompt).slice(-Math.max(1, limit - maxTokens));
  const [generation] = await greedyGenerate(engine.generator, [ids], { maxNewTokens: maxTokens, eosId, padId: tokenizer.padId, maxLength: limit });
  let continuationLoss: number | null = null;
  const next = tokenizer.encode(continuation).slice(0, CONTINUATION_TOKENS);
  if (next.length > 0) {
    const window = [...ids.slice(-Math.max(1, limit - next.length)), ...next];
    const scoredFrom = window.length - next.length;
    const lossMask = Uint8Array.from(window, (_, i) => (i >= scoredFrom ? 1 : 0));
    const example = { id: 'prompt', group: '', splitKey: '', ids: Int32Array.from(window), lossMask };
    const batch = collate([example], { seqLen: window.length, padId: tokenizer.padId });
    const { lossSum, tokens } = await engine.session.lossSum(batch);
    continuationLoss = tokens > 0 ? lossSum / tokens : null;
  }
  return { text: tokenizer.decode(generation.tokens), finish: generation.finish, continuationLoss };
}
