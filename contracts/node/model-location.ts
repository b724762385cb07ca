// The contract of a model argument: what `--model`, the extension's `fedkseed.model.path` setting and the
// trainer's initialize `model` mean, resolved by this one module in the CLI, the trainer and the
// extension's picker. It may name an .onnx file, a plain folder, an Optimum export folder, a
// transformers.js repository (onnx/model*.onnx, tokenizer at the root), a Hugging Face cache folder, or
// an `org/name` id already in the local cache (HF_HUB_CACHE, else HF_HOME/hub, default
// ~/.cache/huggingface/hub; nothing is downloaded). A variant (fp32, fp16, quantized, q4, …) chooses
// among the files; the tokenizer and config files are found where those layouts keep them. Only
// node:fs/path/os: no model is read here (docs/models.md).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

export type ModelLayout = 'file' | 'folder' | 'optimum' | 'transformers.js' | 'hf-cache';

export interface ModelFileChoice {
  readonly variant: string;
  readonly file: string;
}

export interface LocatedModel {
  /** The .onnx file to load. */
  readonly model: string;
  readonly layout: ModelLayout;
  /** The folder the layout is rooted at (repository, snapshot or export folder; the file's folder for a file). */
  readonly root: string;
  /** The variant picked (or the file's own, for a file). */
  readonly variant: string;
  /** Every model file of the layout, by variant (empty for a file). */
  readonly choices: readonly ModelFileChoice[];
  /** tokenizer.json, tokenizer_config.json and config.json where the layout keeps them; null when absent. */
  readonly tokenizer: string | null;
  readonly tokenizerConfig: string | null;
  readonly config: string | null;
  /** Hugging Face cache: the repository id and the snapshot's revision. */
  readonly repo?: string;
  readonly revision?: string;
  /** How the choice was made, when there was one to make (a default, a fallback). */
  readonly notes: readonly string[];
}

export interface LocateOptions {
  /** fp32 (default), fp16, quantized (q8), int8, uint8, q4, q4f16, bnb4. */
  readonly variant?: string;
  /** An explicit tokenizer.json (or its folder); overrides the search. */
  readonly tokenizer?: string;
  /** Environment for HF_HUB_CACHE / HF_HOME (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export class LocateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocateError';
  }
}

/** File-name suffix → variant, as transformers.js names its dtypes and Optimum its quantized files. */
const SUFFIXES: readonly [string, string][] = [
  ['_q4f16', 'q4f16'],
  ['_fp16', 'fp16'],
  ['_quantized', 'quantized'],
  ['_int8', 'int8'],
  ['_uint8', 'uint8'],
  ['_bnb4', 'bnb4'],
  ['_q4', 'q4'],
  ['', 'fp32'],
];

/** The order variants are offered in, and the default's fallbacks. */
export const VARIANTS = ['fp32', 'fp16', 'quantized', 'int8', 'uint8', 'q4', 'q4f16', 'bnb4'] as const;
export const DEFAULT_VARIANT = 'fp32';

const ALIASES: Record<string, string> = { float32: 'fp32', float16: 'fp16', q8: 'quantized' };

/** Decoder file names, most useful first: one file with the cache, the merged decoder, with-past, no past. */
const BASES = ['model', 'decoder_model_merged', 'decoder_with_past_model', 'decoder_model'] as const;

function parseName(file: string): { base: string; variant: string } | null {
  if (!file.endsWith('.onnx')) return null;
  const stem = file.slice(0, -'.onnx'.length);
  for (const base of BASES) {
    if (!stem.startsWith(base)) continue;
    const suffix = stem.slice(base.length);
    const found = SUFFIXES.find(([s]) => s === suffix);
    if (found) return { base, variant: found[1] };
  }
  return null;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function onnxFiles(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.onnx') && !isDir(join(dir, f)))
      .sort();
  } catch {
    return [];
  }
}

/** The Hugging Face hub cache folder. */
export function hubCache(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.HF_HUB_CACHE) return resolve(env.HF_HUB_CACHE);
  return join(env.HF_HOME ? resolve(env.HF_HOME) : join(homedir(), '.cache', 'huggingface'), 'hub');
}

/** org/name ids in the Hugging Face cache whose current snapshot holds an .onnx model (for pickers). */
export function cachedModelIds(env: Readonly<Record<string, string | undefined>> = process.env): string[] {
  const hub = hubCache(env);
  let entries: string[];
  try {
    entries = readdirSync(hub).filter((e) => e.startsWith('models--'));
  } catch {
    return [];
  }
  const ids: string[] = [];
  for (const entry of entries.sort()) {
    try {
      const { dir } = snapshotOf(join(hub, entry));
      if (onnxFiles(dir).length > 0 || onnxFiles(join(dir, 'onnx')).length > 0) ids.push(repoIdOf(join(hub, entry)) as string);
    } catch {
      // no snapshot yet: nothing to pick
    }
  }
  return ids;
}

/** A cache repository folder (models--org--name) → its snapshot: refs/main, else the newest snapshot. */
function snapshotOf(repoDir: string): { dir: string; revision: string } {
  const snapshots = join(repoDir, 'snapshots');
  const ref = join(repoDir, 'refs', 'main');
  if (existsSync(ref)) {
    const revision = readFileSync(ref, 'utf8').trim();
    if (isDir(join(snapshots, revision))) return { dir: join(snapshots, revision), revision };
  }
  const all = isDir(snapshots) ? readdirSync(snapshots).filter((s) => isDir(join(snapshots, s))) : [];
  if (all.length === 0) throw new LocateError(`${repoDir}: a Hugging Face cache folder without snapshots (nothing downloaded yet)`);
  all.sort((a, b) => statSync(join(snapshots, b)).mtimeMs - statSync(join(snapshots, a)).mtimeMs);
  return { dir: join(snapshots, all[0]), revision: all[0] };
}

function repoIdOf(repoDir: string): string | undefined {
  const m = /^models--(.+)$/.exec(basename(repoDir));
  return m ? m[1].split('--').join('/') : undefined;
}

function findFirst(dirs: readonly string[], name: string): string | null {
  for (const d of dirs) if (existsSync(join(d, name))) return join(d, name);
  return null;
}

function normalizeVariant(v: string): string {
  const lower = v.toLowerCase();
  return ALIASES[lower] ?? lower;
}

/** Resolves a model argument (see the module comment); undefined is an error here (callers pass their default). */
export function locateModel(spec: string, options: LocateOptions = {}): LocatedModel {
  const env = options.env ?? process.env;
  let path = resolve(spec);
  let repo: string | undefined;
  let revision: string | undefined;
  if (!existsSync(path)) {
    if (!/^[\w.-]+\/[\w.-]+$/.test(spec)) throw new LocateError(`model file not found: ${path}`);
    const cached = join(hubCache(env), `models--${spec.replace('/', '--')}`);
    if (!isDir(cached)) {
      throw new LocateError(
        `model file not found: ${path}, nor is ${spec} in the Hugging Face cache (${hubCache(env)}); download it first (e.g. huggingface-cli download ${spec}) or pass its folder`,
      );
    }
    path = cached;
  }

  if (!isDir(path)) {
    if (options.variant !== undefined) throw new LocateError(`--variant chooses among the files of a folder; ${path} is a file`);
    const dir = dirname(path);
    const searched = basename(dir) === 'onnx' ? [dir, dirname(dir)] : [dir];
    return withSupportFiles(
      { model: path, layout: 'file', root: dir, variant: parseName(basename(path))?.variant ?? 'file', choices: [], notes: [] },
      searched,
      options,
    );
  }

  if (isDir(join(path, 'snapshots'))) {
    const snap = snapshotOf(path);
    repo = repoIdOf(path);
    revision = snap.revision;
    path = snap.dir;
  }
  const root = path;
  // A transformers.js repository keeps its models in onnx/; pointing at that folder works too.
  let modelDir = root;
  let layout: ModelLayout = 'folder';
  if (onnxFiles(root).length === 0 && isDir(join(root, 'onnx')) && onnxFiles(join(root, 'onnx')).length > 0) {
    modelDir = join(root, 'onnx');
    layout = 'transformers.js';
  } else if (basename(root) === 'onnx' && existsSync(join(dirname(root), 'tokenizer.json'))) {
    layout = 'transformers.js';
  }
  const files = onnxFiles(modelDir);
  if (files.length === 0) throw new LocateError(`no .onnx model in ${root}${isDir(join(root, 'onnx')) ? ' or its onnx/ folder' : ''}`);
  if (layout === 'folder' && files.some((f) => f.startsWith('decoder_'))) layout = 'optimum';
  if (repo) layout = 'hf-cache';

  const parsed = files.map((f) => ({ file: f, name: parseName(f) }));
  const known = parsed.filter((p) => p.name !== null) as { file: string; name: { base: string; variant: string } }[];
  const choices: ModelFileChoice[] = [];
  for (const variant of VARIANTS) {
    for (const base of BASES) {
      const hit = known.find((p) => p.name.base === base && p.name.variant === variant);
      if (hit) choices.push({ variant, file: join(modelDir, hit.file) });
    }
  }
  const notes: string[] = [];
  let picked: ModelFileChoice | undefined;
  if (known.length === 0) {
    if (files.length > 1)
      throw new LocateError(
        `${modelDir} holds several .onnx files and none is named like a decoder (model*.onnx, decoder_model*.onnx): ${files.join(', ')}; pass the file`,
      );
    if (options.variant !== undefined) throw new LocateError(`--variant ${options.variant}: ${modelDir} has one model file, ${files[0]}, with no variants`);
    picked = { variant: 'file', file: join(modelDir, files[0]) };
  } else if (options.variant !== undefined) {
    const want = normalizeVariant(options.variant);
    picked = choices.find((c) => c.variant === want);
    if (!picked) throw new LocateError(`no ${want} variant in ${modelDir}; there are: ${[...new Set(choices.map((c) => c.variant))].join(', ')}`);
  } else {
    picked = choices.find((c) => c.variant === DEFAULT_VARIANT) ?? choices[0];
    if (picked.variant !== DEFAULT_VARIANT) notes.push(`no ${DEFAULT_VARIANT} file; took ${picked.variant}`);
  }
  const chosen = picked;
  const sameVariant = choices.filter((c) => c.variant === chosen.variant);
  if (sameVariant.length > 1) notes.push(`${basename(chosen.file)} of ${sameVariant.map((c) => basename(c.file)).join(', ')}`);
  const searched = modelDir === root ? [root] : [modelDir, root];
  if (basename(root) === 'onnx') searched.push(dirname(root));
  return withSupportFiles({ model: chosen.file, layout, root, variant: chosen.variant, choices, notes, repo, revision }, searched, options);
}

function withSupportFiles(
  base: Omit<LocatedModel, 'tokenizer' | 'tokenizerConfig' | 'config'>,
  searched: readonly string[],
  options: LocateOptions,
): LocatedModel {
  let tokenizer = findFirst(searched, 'tokenizer.json');
  if (options.tokenizer !== undefined) {
    const given = resolve(options.tokenizer);
    tokenizer = isDir(given) ? join(given, 'tokenizer.json') : given;
    if (!existsSync(tokenizer)) throw new LocateError(`tokenizer not found: ${tokenizer}`);
  }
  const tokenizerConfig = tokenizer && existsSync(join(dirname(tokenizer), 'tokenizer_config.json')) ? join(dirname(tokenizer), 'tokenizer_config.json') : null;
  return { ...base, tokenizer, tokenizerConfig, config: findFirst(searched, 'config.json') };
}

/** One line saying what was picked, for the CLI and the extension's log. */
export function describeLocated(l: LocatedModel): string {
  const where =
    l.layout === 'hf-cache'
      ? `Hugging Face cache ${l.repo ?? ''}${l.revision ? `@${l.revision.slice(0, 12)}` : ''}`
      : l.layout === 'file'
        ? 'file'
        : l.layout === 'folder'
          ? `folder ${l.root}`
          : `${l.layout} folder ${l.root}`;
  const variant = l.layout === 'file' ? '' : `, variant ${l.variant}`;
  const tokenizer = l.tokenizer ? `tokenizer ${l.tokenizer}` : 'no tokenizer';
  const notes = l.notes.length > 0 ? ` (${l.notes.join('; ')})` : '';
  return `model ${l.model} (${where}${variant}); ${tokenizer}${notes}`;
}
