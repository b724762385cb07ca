// Option groups shared by several subcommands, and their parsing into typed values.
import { accessSync, closeSync, constants as fsConstants, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { type Dataset, loadDataset } from '../trainer/data/dataset';
import { DATA_FORMATS, type DataFormat } from '../trainer/data/readers';
import { describeNoExamples } from '../trainer/data/empty-dataset';
import type { TextTokenizer } from '../trainer/data/tokenizer';
import type { Engine, EngineOptions } from '../trainer/engine';
import { ENGINE_DEFAULTS, TRAINING_DEFAULTS } from '../contracts/defaults';
import { forwardPrecisions, type ForwardPrecision } from '../contracts/trainer-payloads';
import { describeLocated } from '../contracts/node/model-location';
import { isPostgresUrl, redactStoreUrl } from '../federation/gateway/url';
import type { KernelChoice } from '../trainer/zo/kernels-select';
import { describeBound, type Hyperparameter, HYPERPARAMETER_BOUNDS, withinBound } from '../protocol/config-limits';
import { CliError } from './errors';
import { note, problemReporter } from './output';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

export function fraction(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError('expected a number in [0, 1)');
  return n;
}

/**
 * Parser for an option naming a file or folder to read: a missing one is refused at once, by option
 * and path, rather than surfacing later as a bare ENOENT from whichever module opens it first.
 */
export function existingPath(flag: string): (value: string) => string {
  return (value) => {
    if (!existsSync(value)) throw new CliError(`${flag} ${value}: no such file or folder`);
    return value;
  };
}

/** The most shared seeds a client handles (protocol/config-limits.ts). */
export const MAX_SEEDS = HYPERPARAMETER_BOUNDS.k.max;

/** Parser for K: a positive integer no larger than clients handle. */
export function seedCount(value: string): number {
  const n = positiveInt(value);
  if (n > MAX_SEEDS) throw new InvalidArgumentError(`K is at most ${MAX_SEEDS.toLocaleString('en-US')} (${HYPERPARAMETER_BOUNDS.k.why}); got ${n}`);
  return n;
}

/** The shortest deadline: a client needs time to train and upload, and a shorter one restarts rounds without end. */
export const MIN_DEADLINE_SECONDS = HYPERPARAMETER_BOUNDS.deadlineSeconds.min;

/** Parser for a deadline in seconds: at least MIN_DEADLINE_SECONDS, at most what a Node timer holds. */
export function deadlineSeconds(value: string): number {
  const n = positiveNumber(value);
  const { min, max } = HYPERPARAMETER_BOUNDS.deadlineSeconds;
  if (n < min) throw new InvalidArgumentError(`a deadline is at least ${min} s (clients need time to train and upload); got ${n}`);
  if (n > max) throw new InvalidArgumentError(`a deadline is at most ${max} s (about 24.8 days)`);
  return n;
}

/**
 * Parser for a hyperparameter: a number within its one bound (protocol/config-limits.ts), the interval the
 * extension's settings, the trainer and the codec hold it to; the message names the bound and why.
 */
export function hyperparameterArg(name: Hyperparameter): (value: string) => number {
  const bound = HYPERPARAMETER_BOUNDS[name];
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !withinBound(bound, n)) throw new InvalidArgumentError(`must be ${describeBound(bound)} (${bound.why}); got "${value}"`);
    return n;
  };
}

/**
 * Parser for a positive integer of at most `max`, a bound of the protocol (protocol/config-limits.ts)
 * that `why` names: a value clients would refuse or read otherwise is refused here.
 */
export function positiveIntUpTo(max: number, why: string): (value: string) => number {
  return (value) => {
    const n = positiveInt(value);
    if (n > max) throw new InvalidArgumentError(`at most ${max.toLocaleString('en-US')} (${why}); got ${value}`);
    return n;
  };
}

/**
 * Parser for --store: a folder, or a postgres:// URL with a host and a database. Anything else that looks
 * like a URL (postgres:/db, postgresql:db, mysql://…) is refused rather than taken for a folder name.
 */
export function storeArgument(value: string): string {
  const shape = 'postgres://user@host:port/database (the password in PGPASSWORD, ~/.pgpass or --store-password-file)';
  if (isPostgresUrl(value)) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new CliError(`--store ${redactStoreUrl(value)}: not a valid URL; expected ${shape}`);
    }
    if (url.hostname === '' || url.pathname.length <= 1)
      throw new CliError(`--store ${redactStoreUrl(value)}: names no host or no database; expected ${shape}`);
    return value;
  }
  // A scheme (two letters or more: C:\ is a Windows drive) that is not postgres://.
  if (/^[a-z][a-z0-9+.-]+:/i.test(value))
    throw new CliError(
      `--store ${value.replace(/\/\/[^@/]*@/, '//…@')}: not a postgres:// URL nor a folder; expected a folder or ${shape} (a folder whose name holds a colon: write it as ./name)`,
    );
  return value;
}

/** The largest dataset file read (it is held in memory while it is tokenised). */
export const MAX_DATA_FILE_BYTES = 2 ** 30;

/**
 * Parser for --data: an existing regular file of at most MAX_DATA_FILE_BYTES, or a folder; a device,
 * pipe or socket (/dev/zero, say) is refused rather than read without end.
 */
export function dataPath(value: string): string {
  let st;
  try {
    st = statSync(value);
  } catch {
    throw new CliError(`--data ${value}: no such file or folder`);
  }
  if (st.isDirectory()) return value;
  if (!st.isFile()) throw new CliError(`--data ${value}: not a regular file or folder (a device, pipe or socket is not read)`);
  if (st.size > MAX_DATA_FILE_BYTES)
    throw new CliError(`--data ${value}: ${st.size} bytes, above the limit of ${MAX_DATA_FILE_BYTES} bytes (1 GiB); split it into a folder of smaller files`);
  return value;
}

/**
 * Parser for an option naming a file to write (`flag`): its folder must exist and be writable now, so a
 * run does not fail only when it is done.
 */
export function writableFile(flag: string): (value: string) => string {
  return (value) => {
    const folder = dirname(resolve(value));
    if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new CliError(`${flag} ${value}: the folder ${folder} does not exist; create it first`);
    try {
      accessSync(folder, fsConstants.W_OK);
    } catch {
      throw new CliError(`${flag} ${value}: the folder ${folder} is not writable`);
    }
    if (existsSync(value) && statSync(value).isDirectory()) throw new CliError(`${flag} ${value}: is a folder, expected a file name`);
    return value;
  };
}

export function uint32(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new InvalidArgumentError('expected an unsigned 32-bit integer');
  return n;
}

export interface ModelCliOptions {
  model?: string;
  variant?: string;
  tokenizer?: string;
  trainable?: string[];
  freeze?: string[];
  threads?: number;
  provider: string;
  kernel: KernelChoice;
  forwardPrecision: ForwardPrecision;
}

/**
 * Parser for --model: an existing file or folder, or an org/name id (looked up in the local Hugging Face
 * cache when the engine opens it; nothing is downloaded).
 */
export function modelArgument(value: string): string {
  if (!existsSync(value) && !/^[\w.-]+\/[\w.-]+$/.test(value)) throw new CliError(`--model ${value}: no such file or folder (nor an org/name id)`);
  if (existsSync(value)) checkOnnxShaped(value);
  return value;
}

const TORCH_WEIGHTS = /\.(safetensors|bin|pt|pth|ckpt)$/i;

/** How to turn a transformers checkpoint into what --model reads. */
function optimumHint(folder: string): string {
  return `convert it once with Hugging Face Optimum: optimum-cli export onnx --model ${folder} --task text-generation-with-past ${folder.replace(/[\\/]+$/, '')}-onnx (pip install "optimum[exporters]"), then pass --model ${folder.replace(/[\\/]+$/, '')}-onnx (docs/models.md)`;
}

/**
 * Refuses, by what it is, a --model that cannot be an ONNX model: a transformers checkpoint (safetensors
 * or PyTorch weights, no .onnx file) or a text file. Anything else is left to the model loader.
 */
function checkOnnxShaped(value: string): void {
  const st = statSync(value);
  if (st.isDirectory()) {
    const names = readdirSync(value);
    const nested = ['onnx'].filter((d) => names.includes(d)).flatMap((d) => readdirSync(join(value, d)));
    const hasOnnx = [...names, ...nested].some((n) => n.toLowerCase().endsWith('.onnx'));
    const weights = names.filter((n) => TORCH_WEIGHTS.test(n) && n !== 'tokenizer.bin');
    if (!hasOnnx && weights.length > 0)
      throw new CliError(`--model ${value}: a transformers checkpoint (${weights.slice(0, 2).join(', ')}) without an ONNX export; ${optimumHint(value)}`);
    return;
  }
  if (TORCH_WEIGHTS.test(value)) throw new CliError(`--model ${value}: PyTorch/safetensors weights, not an ONNX model; ${optimumHint(dirname(value))}`);
  const head = Buffer.alloc(4096);
  const fd = openSync(value, 'r');
  let n: number;
  try {
    n = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const bytes = head.subarray(0, n);
  // An ONNX file is a protobuf that opens with a field tag (a control byte, 0x08 for ir_version) and
  // holds NUL bytes within its first few; text holds neither.
  const text = n > 0 && !bytes.includes(0) && [...bytes.subarray(0, 64)].every((b) => b >= 0x20 || b === 0x09 || b === 0x0a || b === 0x0d);
  if (text) throw new CliError(`--model ${value}: a text file, not an ONNX model (an .onnx file exported from a causal language model: docs/models.md)`);
}

/** The model options every engine command shares (docs/models.md). */
export function addModelSelectionOptions(cmd: Command): Command {
  return cmd
    .option(
      '--model <path|id>',
      'an .onnx causal LM, a model folder (plain, Optimum export, transformers.js repository, Hugging Face cache) or an org/name id in the local Hugging Face cache (default: the bundled tiny-code-lm)',
      modelArgument,
    )
    .option('--variant <name>', 'which file of a model folder: fp32 (default), fp16, quantized (q8), int8, uint8, q4, q4f16, bnb4')
    .option(
      '--tokenizer <path>',
      "Hugging Face tokenizer.json (default: where the model's layout keeps it; pre-tokenised data needs none)",
      existingPath('--tokenizer'),
    )
    .option('--trainable <glob...>', 'train only the parameters whose names match (* any characters, ? one; names as fedkseed inspect lists them)')
    .option('--freeze <glob...>', 'leave the parameters whose names match untrained');
}

export function addModelOptions(cmd: Command): Command {
  return addModelSelectionOptions(cmd)
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .option(
      '--provider <list>',
      'execution providers to try in order, comma-separated: cpu, webgpu, cuda, dml, or auto (a hardware GPU that can run the whole model — CUDA, DirectML, WebGPU on a hardware adapter, never a software one — else the CPU)',
      ENGINE_DEFAULTS.provider.cli,
    )
    .addOption(new Option('--kernel <name>', 'perturbation kernel').choices(['auto', 'wasm-simd', 'js']).default(ENGINE_DEFAULTS.kernel))
    .addOption(
      new Option('--forward-precision <p>', "the WebGPU engine's products: float16 where the adapter has shader-f16 (docs/gpu.md)")
        .choices([...forwardPrecisions])
        .default(ENGINE_DEFAULTS.forwardPrecision),
    );
}

export function engineOptions(o: ModelCliOptions): EngineOptions {
  return {
    model: o.model,
    variant: o.variant,
    tokenizer: o.tokenizer,
    select: o.trainable || o.freeze ? { trainable: o.trainable, freeze: o.freeze } : undefined,
    threads: o.threads,
    providers: o.provider
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean),
    kernel: o.kernel,
    forwardPrecision: o.forwardPrecision,
  };
}

/**
 * Says on stderr which file, variant and tokenizer the model argument resolved to, and why the forwards
 * do not run as --forward-precision asked where they do not (text output only).
 */
export function reportModel(engine: Engine, json: boolean | undefined): void {
  if (json) return;
  note(describeLocated(engine.located));
  reportPrecision(engine, json);
}

/** Says on stderr why the forwards do not run as --forward-precision asked, where they do not (text output only). */
export function reportPrecision(engine: Engine, json: boolean | undefined): void {
  if (!json && engine.forwardPrecision.note) note(engine.forwardPrecision.note);
}

export interface DataCliOptions {
  data: string;
  format?: DataFormat;
  include?: string[];
  seqLen: number;
  /** Whether --seq-len was typed; the default shrinks to a model with fewer positions, a typed value is checked. */
  seqLenGiven?: boolean;
  batchSize: number;
  strict?: boolean;
}

export function addDataOptions(cmd: Command, dataDefault = '.'): Command {
  return cmd
    .option('--data <path>', 'dataset file (at most 1 GiB) or folder (JSONL, JSON, text/code files)', dataPath, dataDefault)
    .addOption(new Option('--format <format>', 'dataset format (default: detected)').choices([...DATA_FORMATS]))
    .option('--include <glob...>', 'for folders of text/code: globs of files to read (default: every text file)')
    .option('--seq-len <n>', 'tokens per example window', hyperparameterArg('seqLen'), TRAINING_DEFAULTS.seqLen)
    .option('--batch-size <n>', 'examples per batch', hyperparameterArg('batchSize'), TRAINING_DEFAULTS.batchSize)
    .option('--strict', 'stop at the first bad dataset line instead of reporting and skipping it')
    .hook('preAction', (command) => {
      command.setOptionValue('seqLenGiven', command.getOptionValueSource('seqLen') !== 'default');
    });
}

/** --seq-len against the model's positions, when the model says how many it has. */
export function checkSeqLen(seqLen: number, context: number | undefined): void {
  if (context !== undefined && seqLen > context)
    throw new CliError(`--seq-len ${seqLen} exceeds the model's ${context} positions; use --seq-len ${context} or less`);
}

/** Reads the dataset the data options name, reporting every bad line as it is found. */
export async function loadCliDataset(
  o: DataCliOptions & { json?: boolean },
  tokenizer: TextTokenizer,
  heldOutFraction: number,
  context?: number,
): Promise<Dataset> {
  if (context !== undefined && o.seqLen > context && o.seqLenGiven === false) {
    o.seqLen = context;
    if (!o.json) note(`--seq-len ${context}: the model has ${context} positions`);
  }
  checkSeqLen(o.seqLen, context);
  const data = await loadDataset(o.data, {
    tokenizer,
    seqLen: o.seqLen,
    format: o.format,
    include: o.include,
    heldOutFraction,
    policy: o.strict ? 'strict' : 'skip',
    onProblem: problemReporter(Boolean(o.json)),
  });
  if (data.train.length + data.heldOut.length === 0)
    throw new CliError(await describeNoExamples(o.data, data.skipped, data.problems.length, { include: o.include }));
  return data;
}
