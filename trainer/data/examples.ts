// Records → token sequences the trainer can batch.
//
// Instruction data uses the Alpaca prompt and trains only on the answer: the prompt tokens are
// context, the response tokens and the closing EOS are targets. This is what the FedKSeed
// reference does (labels -100 over the prompt), and it keeps the loss comparable across prompts of
// very different lengths. Prompt and response are encoded separately and concatenated, so the
// tokens the model is trained to continue are exactly the tokens greedy generation starts from.
//
// Text and code files are encoded whole, followed by EOS, and cut into windows of seqLen tokens
// that never cross a file boundary: the train/held-out split and the client groups are per file,
// and a window spanning two files would leak one into the other. Consecutive windows overlap by one
// token so every next-token prediction of the file is made exactly once.
import type { ProblemLog } from './problems';
import type { DataRecord, InstructionRecord } from './records';
import { requireEos, type TextTokenizer } from './tokenizer';

export interface Example {
  readonly id: string;
  /** Category, task or top-level folder: the unit of non-IID client splits. */
  readonly group: string;
  /** What the train/held-out split hashes: the file for text windows, the example id otherwise. */
  readonly splitKey: string;
  readonly ids: Int32Array;
  /** 1 where token t is a prediction target; absent means every token is. */
  readonly lossMask?: Uint8Array;
  /** Instruction examples: the first promptLength ids are the generation prompt. */
  readonly promptLength?: number;
  /** Instruction examples: the reference answer for Rouge-L. */
  readonly reference?: string;
}

const PREAMBLE_WITH_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. ' +
  'Write a response that appropriately completes the request.\n\n';
const PREAMBLE_NO_INPUT = 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n';

/** The Alpaca prompt; the "### Input:" block only when there is an input. */
export function formatPrompt(instruction: string, input: string): string {
  return input.trim() === ''
    ? `${PREAMBLE_NO_INPUT}### Instruction:\n${instruction}\n\n### Response:\n`
    : `${PREAMBLE_WITH_INPUT}### Instruction:\n${instruction}\n\n### Input:\n${input}\n\n### Response:\n`;
}

export interface ExampleOptions {
  readonly tokenizer: TextTokenizer;
  /** Longest sequence the model takes (its context length or less). */
  readonly seqLen: number;
  readonly log: ProblemLog;
}

function instructionExample(r: InstructionRecord, { tokenizer, seqLen, log }: ExampleOptions): Example[] {
  const prompt = tokenizer.encode(formatPrompt(r.instruction, r.input));
  const response = tokenizer.encode(r.output);
  // At least one response token must fit, or the example has nothing to learn from.
  if (prompt.length >= seqLen) {
    log.report(r.source.file, r.source.line, `prompt is ${prompt.length} tokens, no room for the response within seqLen ${seqLen}`);
    return [];
  }
  // Long answers are cut at seqLen (the EOS goes first); the prompt is kept whole.
  const length = Math.min(prompt.length + response.length + 1, seqLen);
  const ids = new Int32Array(length);
  ids.set(prompt);
  ids.set(response.slice(0, length - prompt.length), prompt.length);
  if (prompt.length + response.length < length) ids[length - 1] = requireEos(tokenizer, 'instruction examples');
  const lossMask = new Uint8Array(length);
  lossMask.fill(1, prompt.length);
  return [{ id: r.id, group: r.group, splitKey: r.id, ids, lossMask, promptLength: prompt.length, reference: r.output }];
}

/** Windows of seqLen tokens with a one-token overlap; a last window needs two tokens (one prediction). */
export function windowStarts(tokens: number, seqLen: number): number[] {
  if (seqLen < 2) throw new RangeError(`seqLen must be at least 2, got ${seqLen}`);
  const starts: number[] = [];
  for (let s = 0; s === 0 || s < tokens - 1; s += seqLen - 1) {
    if (tokens - s < 2) break;
    starts.push(s);
  }
  return starts;
}

function windows(id: string, group: string, ids: Int32Array, mask: Uint8Array | undefined, seqLen: number): Example[] {
  return windowStarts(ids.length, seqLen).map((s, k) => {
    const end = Math.min(s + seqLen, ids.length);
    const window: Example = { id: `${id}#${k}`, group, splitKey: id, ids: ids.subarray(s, end) };
    return mask ? { ...window, lossMask: mask.subarray(s, end) } : window;
  });
}

/** One record → zero or more examples (several windows for long texts). */
export function recordToExamples(record: DataRecord, options: ExampleOptions): Example[] {
  switch (record.kind) {
    case 'instruction':
      return instructionExample(record, options);
    case 'text': {
      const tokens = options.tokenizer.encode(record.text);
      const ids = new Int32Array(tokens.length + 1);
      ids.set(tokens);
      ids[tokens.length] = requireEos(options.tokenizer, 'text examples');
      return windows(record.id, record.group, ids, undefined, options.seqLen);
    }
    case 'tokens': {
      const ids = Int32Array.from(record.inputIds);
      const mask = record.lossMask ? Uint8Array.from(record.lossMask) : undefined;
      const out = windows(record.id, record.group, ids, mask, options.seqLen);
      if (out.length === 0) options.log.report(record.source.file, record.source.line, 'sequence has fewer than 2 tokens: nothing to predict');
      return out;
    }
  }
}

/** Tokenises a record stream; text is dropped as soon as it is encoded. */
export async function buildExamples(records: AsyncIterable<DataRecord> | Iterable<DataRecord>, options: ExampleOptions): Promise<Example[]> {
  const out: Example[] = [];
  for await (const r of records) for (const e of recordToExamples(r, options)) out.push(e);
  return out;
}

/** Number of positions that contribute to the loss (token t > 0 with mask 1). */
export function targetCount(e: Example): number {
  if (!e.lossMask) return Math.max(0, e.ids.length - 1);
  let n = 0;
  for (let t = 1; t < e.lossMask.length; t++) n += e.lossMask[t];
  return n;
}
