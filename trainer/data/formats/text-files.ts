// Plain text / source files selected by glob under a root folder. One record per file; files are
// read one at a time so a large tree never sits in memory as text all at once.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { glob } from 'tinyglobby';
import type { ProblemLog } from '../problems';
import type { SkippedFile, TextRecord } from '../records';

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

/** NUL in the first 8 KiB is how git and most editors tell binary files apart. */
function looksBinary(bytes: Uint8Array): boolean {
  return bytes.subarray(0, 8192).includes(0);
}

/** Top-level folder of a relative path; files at the root form the group '.'. */
export function topLevelGroup(relPath: string): string {
  const slash = relPath.indexOf('/');
  return slash === -1 ? '.' : relPath.slice(0, slash);
}

export async function listTextFiles(root: string, options: TextFilesOptions = {}): Promise<string[]> {
  const ignore = [...(options.defaultExcludes === false ? [] : DEFAULT_EXCLUDES), ...(options.exclude ?? [])];
  const files = await glob(options.include ? [...options.include] : ['**/*'], {
    cwd: root,
    ignore,
    onlyFiles: true,
    followSymbolicLinks: false,
    expandDirectories: false,
  });
  // Sorted by code unit so every platform sees the same order.
  return files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
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
    log.report(file, 0, `cannot read: ${(err as Error).message}`);
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

export async function* readTextFiles(
  root: string,
  log: ProblemLog,
  skipped: SkippedFile[],
  options: TextFilesOptions = {},
): AsyncGenerator<TextRecord> {
  for (const rel of await listTextFiles(root, options)) {
    const record = await readOneTextFile(join(root, rel), rel, log, skipped, options.maxFileBytes);
    if (record) yield record;
  }
}
