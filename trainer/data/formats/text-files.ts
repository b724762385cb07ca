// Plain text / source files selected by glob under a root folder. One record per file; files are
// read one at a time so a large tree never sits in memory as text all at once.
import { readFile, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { glob } from 'tinyglobby';
import type { ProblemLog } from '../problems';
import type { SkippedFile, TextRecord } from '../records';
import { errorMessage } from '../../../protocol/errors';

export interface TextFilesOptions {
  /** Glob patterns relative to the root (default every file). */
  include?: readonly string[];
  /** Extra patterns to leave out, on top of the defaults. */
  exclude?: readonly string[];
  /** Set false to drop DEFAULT_EXCLUDES (default true). */
  defaultExcludes?: boolean;
  /** Larger files are skipped as generated or data (default 2 MiB). */
  maxFileBytes?: number;
}

/** Build output, dependencies, VCS data, lock files and known binary types. */
export const DEFAULT_EXCLUDES: readonly string[] = [
  '**/node_modules/**',
  '**/.git/**',
  '**/dist/**',
  '**/out/**',
  '**/build/**',
  '**/coverage/**',
  '**/__pycache__/**',
  '**/.venv/**',
  '**/venv/**',
  '**/*.min.js',
  '**/*.map',
  '**/package-lock.json',
  '**/yarn.lock',
  '**/pnpm-lock.yaml',
  '**/*.{png,jpg,jpeg,gif,bmp,ico,webp,pdf,zip,gz,tgz,bz2,xz,7z,tar,jar,exe,dll,so,dylib,o,a,class,pyc,wasm,onnx,bin,pt,safetensors,npy,npz,woff,woff2,ttf,otf,mp3,mp4,wav,mov,sqlite,db}',
];

export const DEFAULT_MAX_FILE_BYTES = 2 * 1024 * 1024;

/** FedKSeed's own working folder (exports, stores, runs): never data, whatever `include` says. */
export const WORK_FOLDER_EXCLUDE = '**/.fedkseed/**';

/** Why a model's folder is left out, as a skipped file's reason. */
export const MODEL_FOLDER_REASON = 'an ONNX model with its tokenizer and config, not training data';

/** The files a model keeps beside its .onnx (an export, an Optimum or transformers.js folder). */
const MODEL_COMPANIONS = new Set([
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'config.json',
  'generation_config.json',
  'preprocessor_config.json',
  'quantize_config.json',
  'vocab.json',
  'vocab.txt',
  'merges.txt',
  'tokenizer.model',
]);

/**
 * Where a folder holds ONNX models: each model's folder (relative, '/'-separated; a transformers.js
 * repository's, for models under onnx/). A model at the root itself is '.', whose companions only are
 * left out (the rest of the folder is still data).
 */
export async function modelFolders(root: string, options: Pick<TextFilesOptions, 'exclude'> = {}): Promise<string[]> {
  const models = await glob(['**/*.onnx'], {
    cwd: root,
    ignore: ['**/node_modules/**', '**/.git/**', WORK_FOLDER_EXCLUDE, ...(options.exclude ?? [])],
    onlyFiles: true,
    followSymbolicLinks: false,
    expandDirectories: false,
  });
  const folders = new Set<string>();
  for (const file of models) {
    const dir = posix.dirname(file);
    folders.add(posix.basename(dir) === 'onnx' ? posix.dirname(dir) : dir);
  }
  return [...folders].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Whether `rel` (a '/'-separated path under the root) belongs to one of the model folders. */
export function inModelFolder(rel: string, folders: readonly string[]): boolean {
  return folders.some((f) => (f === '.' ? !rel.includes('/') && MODEL_COMPANIONS.has(rel) : rel.startsWith(`${f}/`)));
}

/** Leaves out the files of model folders, naming each folder (or root companion file) in `skipped`. */
export function withoutModels(root: string, files: readonly string[], folders: readonly string[], skipped?: SkippedFile[]): string[] {
  if (folders.length === 0) return [...files];
  const kept: string[] = [];
  const named = new Set<string>();
  for (const rel of files) {
    if (!inModelFolder(rel, folders)) {
      kept.push(rel);
      continue;
    }
    const folder = folders.find((f) => f !== '.' && rel.startsWith(`${f}/`));
    const what = folder ?? rel;
    if (!named.has(what)) {
      named.add(what);
      skipped?.push({ file: join(root, what), reason: MODEL_FOLDER_REASON });
    }
  }
  return kept;
}

/** NUL in the first 8 KiB is how git and most editors tell binary files apart. */
function looksBinary(bytes: Uint8Array): boolean {
  return bytes.subarray(0, 8192).includes(0);
}

/** Top-level folder of a relative path; files at the root form the group '.'. */
export function topLevelGroup(relPath: string): string {
  const slash = relPath.indexOf('/');
  return slash === -1 ? '.' : relPath.slice(0, slash);
}

/**
 * The text files of a folder, sorted: the default excludes, FedKSeed's .fedkseed/ folder and the
 * folders of ONNX models (an export's tokenizer.json is not data) left out; each model folder is named
 * in `skipped`.
 */
export async function listTextFiles(root: string, options: TextFilesOptions = {}, skipped?: SkippedFile[]): Promise<string[]> {
  const ignore = [...(options.defaultExcludes === false ? [] : DEFAULT_EXCLUDES), WORK_FOLDER_EXCLUDE, ...(options.exclude ?? [])];
  const files = await glob(options.include ? [...options.include] : ['**/*'], {
    cwd: root,
    ignore,
    onlyFiles: true,
    followSymbolicLinks: false,
    expandDirectories: false,
  });
  // Sorted by code unit so every platform sees the same order.
  const sorted = files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return withoutModels(root, sorted, await modelFolders(root, options), skipped);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads one file as text, or says why it was skipped; `rel` becomes the record id. */
export async function readOneTextFile(
  file: string,
  rel: string,
  log: ProblemLog,
  skipped: SkippedFile[],
  maxBytes: number = DEFAULT_MAX_FILE_BYTES,
): Promise<TextRecord | undefined> {
  let bytes: Uint8Array;
  try {
    const info = await stat(file);
    if (info.size > maxBytes) {
      skipped.push({ file, reason: `larger than ${maxBytes} bytes (${info.size})` });
      return undefined;
    }
    bytes = await readFile(file);
  } catch (err) {
    log.report(file, 0, `cannot read: ${errorMessage(err)}`);
    return undefined;
  }
  if (looksBinary(bytes)) {
    skipped.push({ file, reason: 'binary (contains NUL bytes)' });
    return undefined;
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    skipped.push({ file, reason: 'not valid UTF-8' });
    return undefined;
  }
  text = text.replace(/^\uFEFF/, '');
  if (text.length === 0) {
    skipped.push({ file, reason: 'empty' });
    return undefined;
  }
  return { kind: 'text', id: rel, group: topLevelGroup(rel), text, source: { file, line: 0 } };
}

export async function* readTextFiles(root: string, log: ProblemLog, skipped: SkippedFile[], options: TextFilesOptions = {}): AsyncGenerator<TextRecord> {
  for (const rel of await listTextFiles(root, options, skipped)) {
    const record = await readOneTextFile(join(root, rel), rel, log, skipped, options.maxFileBytes);
    if (record) yield record;
  }
}
