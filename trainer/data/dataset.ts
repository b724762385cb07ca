// The one call the trainer makes: read a path, tokenise, split into train / held-out.
import { type Example, buildExamples, targetCount } from './examples';
import { type BadInputPolicy, type DataProblem, ProblemLog } from './problems';
import { type ReadOptions, readRecords } from './readers';
import type { SkippedFile } from './records';
import { splitTrainHeldOut } from './splits';
import type { TextTokenizer } from './tokenizer';

export interface DatasetOptions extends ReadOptions {
  readonly tokenizer: TextTokenizer;
  readonly seqLen: number;
  /** Share of examples (by split key) held out for evaluation (default 0.05). */
  readonly heldOutFraction?: number;
  /** Changes which examples are held out, for repeated experiments (default ''). */
  readonly splitSalt?: string;
  readonly policy?: BadInputPolicy;
  readonly onProblem?: (p: DataProblem) => void;
}

export interface Dataset {
  readonly train: Example[];
  readonly heldOut: Example[];
  readonly problems: readonly DataProblem[];
  readonly skipped: readonly SkippedFile[];
  /** Target tokens (positions that contribute to the loss) in train / held-out. */
  readonly trainTargets: number;
  readonly heldOutTargets: number;
}

export async function loadDataset(path: string, options: DatasetOptions): Promise<Dataset> {
  const log = new ProblemLog(options.policy ?? 'skip', options.onProblem);
  const skipped: SkippedFile[] = [];
  const readOptions: ReadOptions = { ...options, vocabSize: options.vocabSize ?? options.tokenizer.vocabSize };
  const examples = await buildExamples(readRecords(path, log, skipped, readOptions), { tokenizer: options.tokenizer, seqLen: options.seqLen, log });
  const { train, heldOut } = splitTrainHeldOut(examples, options.heldOutFraction ?? 0.05, options.splitSalt ?? '');
  const sum = (xs: Example[]) => xs.reduce((n, e) => n + targetCount(e), 0);
  return { train, heldOut, problems: log.problems, skipped, trainTargets: sum(train), heldOutTargets: sum(heldOut) };
}
