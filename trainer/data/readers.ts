// One entry point for every dataset format: detect (or take) the format, then stream records.
import { open, readdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { glob } from 'tinyglobby';
import { readAlpaca } from './formats/alpaca';
import { readDolly } from './formats/dolly';
import { type NaturalInstructionsOptions, readNaturalInstructions } from './formats/natural-instructions';
import { type PretokenizedOptions, readPretokenized } from './formats/pretokenized';
import {
  DEFAULT_EXCLUDES,
  type TextFilesOptions,
  WORK_FOLDER_EXCLUDE,
  modelFolders,
  readOneTextFile,
  readTextFiles,
  withoutModels,
} from './formats/text-files';
import { type BadInputPolicy, type DataProblem, ProblemLog } from './problems';
import type { DataRecord, SkippedFile } from './records';

export const DATA_FORMATS = ['dolly', 'alpaca', 'natural-instructions', 'pretokenized', 'text'] as const;
export type DataFormat = (typeof DATA_FORMATS)[number];

export interface ReadOptions extends TextFilesOptions, NaturalInstructionsOptions, PretokenizedOptions {
  /** Explicit format; 'auto' (default) detects it from the extension and the first record. */
  format?: DataFormat | 'auto';
}

const JSON_LINES_EXT = new Set(['.jsonl', '.ndjson']);
const RECORD_EXT = new Set(['.json', ...JSON_LINES_EXT]);

async function readHead(file: string, bytes: number): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buf, 0, bytes, 0);
    return buf
      .subarray(0, bytesRead)
      .toString('utf8')
      .replace(/^\uFEFF/, '');
  } finally {
    await handle.close();
  }
}

function formatOfKeys(keys: Set<string>): DataFormat | undefined {
  if (keys.has('input_ids')) return 'pretokenized';
  if (keys.has('instruction') && keys.has('response')) return 'dolly';
  if (keys.has('instruction') && keys.has('output')) return 'alpaca';
  return undefined;
}

/** Detects the format of one file; throws an error naming the file when it cannot tell. */
export async function detectFileFormat(file: string): Promise<DataFormat> {
  const ext = extname(file).toLowerCase();
  if (!RECORD_EXT.has(ext)) return 'text';
  const head = await readHead(file, 1 << 20);
  if (JSON_LINES_EXT.has(ext)) {
    const first = head.split('\n').find((l) => l.trim() !== '');
    let keys = new Set<string>();
    try {
      const v: unknown = JSON.parse(first ?? '');
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) keys = new Set(Object.keys(v));
    } catch {
      // An unparsable first line: fall through to the error below, which names the file.
    }
    const format = formatOfKeys(keys);
    if (format) return format;
    throw new Error(`${file}: cannot tell the dataset format from the first line (keys: ${[...keys].join(', ') || 'none'}); pass a format explicitly`);
  }
  const start = head.search(/\S/);
  if (head[start] === '[') return 'alpaca';
  if (head[start] === '{' && /"Definition"\s*:/.test(head) && /"Instances"\s*:/.test(head)) return 'natural-instructions';
  // A JSON file that is neither is treated as text (package.json, settings, …).
  return 'text';
}

/** The record files of a folder, FedKSeed's .fedkseed/ and model folders (a tokenizer.json is not a dataset) left out and named in `skipped`. */
async function recordFilesUnder(dir: string, skipped: SkippedFile[]): Promise<string[]> {
  const files = await glob(['**/*.{json,jsonl,ndjson}'], { cwd: dir, ignore: [...DEFAULT_EXCLUDES, WORK_FOLDER_EXCLUDE], followSymbolicLinks: false });
  const sorted = files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return withoutModels(dir, sorted, await modelFolders(dir), skipped).map((f) => join(dir, f));
}

/**
 * A directory is read as text/code unless it holds record files only (e.g. a folder of Natural
 * Instructions tasks), in which case the first one decides.
 */
export async function detectFormat(path: string): Promise<DataFormat> {
  if (!(await stat(path)).isDirectory()) return detectFileFormat(path);
  const entries = (await readdir(path, { withFileTypes: true })).filter((e) => e.isFile() && !e.name.startsWith('.'));
  if (entries.length === 0 || !entries.every((e) => RECORD_EXT.has(extname(e.name).toLowerCase()))) return 'text';
  const first = entries.map((e) => e.name).sort()[0];
  return detectFileFormat(join(path, first));
}

function readFile(file: string, format: Exclude<DataFormat, 'text'>, log: ProblemLog, options: ReadOptions): AsyncGenerator<DataRecord> {
  switch (format) {
    case 'dolly':
      return readDolly(file, log);
    case 'alpaca':
      return readAlpaca(file, log);
    case 'natural-instructions':
      return readNaturalInstructions(file, log, options);
    case 'pretokenized':
      return readPretokenized(file, log, options);
  }
}

/**
 * Streams the records of a file or folder. Problems go to `log` (which throws under 'strict');
 * files deliberately left out (binary, too large) are appended to `skipped`.
 */
export async function* readRecords(path: string, log: ProblemLog, skipped: SkippedFile[], options: ReadOptions = {}): AsyncGenerator<DataRecord> {
  const format = !options.format || options.format === 'auto' ? await detectFormat(path) : options.format;
  const isDir = (await stat(path)).isDirectory();
  if (format === 'text') {
    if (isDir) yield* readTextFiles(path, log, skipped, options);
    else {
      const record = await readOneTextFile(path, basename(path), log, skipped, options.maxFileBytes);
      if (record) yield record;
    }
    return;
  }
  for (const file of isDir ? await recordFilesUnder(path, skipped) : [path]) yield* readFile(file, format, log, options);
}

export interface ReadResult {
  readonly records: DataRecord[];
  readonly problems: readonly DataProblem[];
  readonly skipped: readonly SkippedFile[];
}

/** Reads everything into memory; for small sets and tests. Large sets should stream readRecords. */
export async function readAllRecords(
  path: string,
  options: ReadOptions & { policy?: BadInputPolicy; onProblem?: (p: DataProblem) => void } = {},
): Promise<ReadResult> {
  const log = new ProblemLog(options.policy ?? 'skip', options.onProblem);
  const skipped: SkippedFile[] = [];
  const records: DataRecord[] = [];
  for await (const r of readRecords(path, log, skipped, options)) records.push(r);
  return { records, problems: log.problems, skipped };
}
