// Why a dataset path gave no examples: what was read, what was skipped and why, in a few lines.
import { stat } from 'node:fs/promises';
import { relative } from 'node:path';
import { glob } from 'tinyglobby';
import { inModelFolder, listTextFiles, modelFolders, type TextFilesOptions, WORK_FOLDER_EXCLUDE } from './formats/text-files';
import type { SkippedFile } from './records';

/** How many example files each reason names. */
const EXAMPLES_PER_REASON = 3;

export interface SkipGroup {
  /** The reason without a file's own figures: "larger than 2097152 bytes", "binary (contains NUL bytes)". */
  readonly reason: string;
  readonly count: number;
  /** The first few files (relative to the dataset root). */
  readonly examples: readonly string[];
}

/** Skipped files grouped by reason, largest group first. */
export function groupSkipped(skipped: readonly SkippedFile[], root: string): SkipGroup[] {
  const groups = new Map<string, string[]>();
  for (const s of skipped) {
    const reason = s.reason.replace(/\s*\(\d+\)$/, '');
    const files = groups.get(reason) ?? [];
    files.push(relative(root, s.file) || s.file);
    groups.set(reason, files);
  }
  return [...groups.entries()]
    .map(([reason, files]) => ({ reason, count: files.length, examples: files.slice(0, EXAMPLES_PER_REASON) }))
    .sort((a, b) => b.count - a.count);
}

/**
 * Files under `root` (matching `include`) that the default excludes leave out: binary types, build
 * output, lock files. Dependency and VCS folders are not walked.
 */
export async function defaultExcluded(root: string, options: TextFilesOptions = {}): Promise<string[]> {
  const all = await glob(options.include ? [...options.include] : ['**/*'], {
    cwd: root,
    ignore: ['**/node_modules/**', '**/.git/**', WORK_FOLDER_EXCLUDE, ...(options.exclude ?? [])],
    onlyFiles: true,
    followSymbolicLinks: false,
    expandDirectories: false,
  });
  const kept = new Set(await listTextFiles(root, options));
  // A model's files are named once, as a skipped folder, not counted again here.
  const models = await modelFolders(root, options);
  return all.filter((f) => !kept.has(f) && !inModelFolder(f, models)).sort();
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const listed = (examples: readonly string[], count: number) => `${examples.join(', ')}${count > examples.length ? `, …` : ''}`;

/**
 * The one message for a dataset path that gave no examples: what it holds, every skip reason with its
 * count and a few files, and what to pass instead.
 */
export async function describeNoExamples(path: string, skipped: readonly SkippedFile[], problems: number, options: TextFilesOptions = {}): Promise<string> {
  const isDir = (await stat(path)).isDirectory();
  const lines: string[] = [];
  const groups = groupSkipped(skipped, isDir ? path : '.');
  const excluded = isDir ? await defaultExcluded(path, options) : [];
  const skippedCount = groups.reduce((n, g) => n + g.count, 0);
  if (isDir && skippedCount === 0 && excluded.length === 0 && problems === 0) {
    lines.push(`no examples in ${path}: it holds no files${options.include ? ` matching --include ${options.include.join(' ')}` : ''}`);
  } else {
    lines.push(
      `no examples in ${path}: ${[skippedCount > 0 ? `${plural(skippedCount, 'file')} skipped` : '', excluded.length > 0 ? `${plural(excluded.length, 'file')} left out by the default excludes` : '', problems > 0 ? `${plural(problems, 'bad line')} (reported above)` : ''].filter(Boolean).join(', ') || 'nothing to read'}`,
    );
    for (const g of groups) lines.push(`  ${g.count} ${g.reason}: ${listed(g.examples, g.count)}`);
    if (excluded.length > 0)
      lines.push(
        `  ${excluded.length} binary, build output or lock files (default excludes): ${listed(excluded.slice(0, EXAMPLES_PER_REASON), excluded.length)}`,
      );
  }
  lines.push('--data takes a folder of text or code files, or a JSONL/JSON dataset (docs/data.md)');
  return lines.join('\n');
}
