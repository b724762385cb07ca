// The study's two tasks, made concrete: a model file, a tokenizer, client shards and a global held-out set.
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CODE_GLOBS } from '../../simulate/shards';
import { loadDataset } from '../../trainer/data/dataset';
import { buildExamples, type Example } from '../../trainer/data/examples';
import { ProblemLog } from '../../trainer/data/problems';
import type { DataRecord } from '../../trainer/data/records';
import { splitDirichlet, splitTrainHeldOut } from '../../trainer/data/splits';
import { loadTokenizer, type TextTokenizer } from '../../trainer/data/tokenizer';
import { writeGpt2 } from '../../trainer/model/gpt2-builder';
import { resolveModelPaths } from '../../trainer/paths';
import type { TaskSpec } from './config';

export interface PreparedTask {
  readonly spec: TaskSpec;
  readonly modelPath: string;
  readonly tokenizerPath: string;
  readonly shards: readonly Example[][];
  /** The global held-out windows the global model is evaluated on (no client trains on them). */
  readonly heldOut: readonly Example[];
  readonly data: {
    readonly source: string;
    readonly train: number;
    readonly heldOut: number;
    readonly groups: number;
    readonly groupsPerClient: readonly string[][];
  };
}

export interface TaskSources {
  /** Root of the code corpus (default: the current folder, i.e. this repository). */
  readonly codeRoot: string;
  /** Folder of fortune files, one category per file. */
  readonly fortunesDir: string;
  /** Where built models are written. */
  readonly workDir: string;
}

export const DEFAULT_FORTUNES_DIR = '/usr/share/games/fortunes';

/** Package of a source file: its first two folders ("trainer/zo"), or its one folder, or '.' at the root. */
export function packageOf(path: string): string {
  const parts = path.split('/').slice(0, -1);
  return parts.length === 0 ? '.' : parts.slice(0, 2).join('/');
}

/**
 * Whole packages per client, dealt largest first to the client with the fewest windows so far: every
 * client holds only some folders (non-IID), and sizes stay comparable.
 */
export function dealPackages(train: readonly Example[], clients: number): Example[][] {
  const byGroup = new Map<string, Example[]>();
  for (const e of train) {
    const list = byGroup.get(e.group) ?? [];
    list.push(e);
    byGroup.set(e.group, list);
  }
  if (byGroup.size < clients) throw new Error(`${byGroup.size} packages cannot give ${clients} clients one each`);
  const groups = [...byGroup.entries()].sort((a, b) => b[1].length - a[1].length || (a[0] < b[0] ? -1 : 1));
  const shards: Example[][] = Array.from({ length: clients }, () => []);
  for (const [, members] of groups) {
    let target = 0;
    for (let c = 1; c < clients; c++) if (shards[c].length < shards[target].length) target = c;
    shards[target].push(...members);
  }
  return shards;
}

function groupsOf(shard: readonly Example[]): string[] {
  return [...new Set(shard.map((e) => e.group))].sort();
}

/** Deterministic evaluation slice: the held-out windows sorted by id, evenly strided. */
function evalSlice(heldOut: readonly Example[], n: number): Example[] {
  const sorted = [...heldOut].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (sorted.length <= n) return sorted;
  const stride = sorted.length / n;
  return Array.from({ length: n }, (_, i) => sorted[Math.floor(i * stride)]);
}

async function prepareCode(spec: TaskSpec, src: TaskSources, tokenizer: TextTokenizer): Promise<Omit<PreparedTask, 'spec' | 'modelPath' | 'tokenizerPath'>> {
  const ds = await loadDataset(src.codeRoot, { tokenizer, seqLen: spec.seqLen, include: CODE_GLOBS, heldOutFraction: 0.1, policy: 'skip' });
  // Regroup by package: top-level folders are too few for 20 clients.
  const train = ds.train.map((e) => ({ ...e, group: packageOf(e.splitKey) }));
  const shards = dealPackages(train, spec.clients);
  return {
    shards,
    heldOut: evalSlice(ds.heldOut, spec.evalExamples),
    data: {
      source: src.codeRoot,
      train: train.length,
      heldOut: ds.heldOut.length,
      groups: new Set(train.map((e) => e.group)).size,
      groupsPerClient: shards.map(groupsOf),
    },
  };
}

/** One record per fortune (the files separate them with lines holding only "%"), grouped by file. */
export function readFortunes(dir: string): DataRecord[] {
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => !f.includes('.') && statSync(join(dir, f)).isFile())
      .sort();
  } catch {
    throw new Error(`no fortunes at ${dir}: install Debian's "fortunes" package (apt-get install fortunes) or pass --fortunes <dir>`);
  }
  const records: DataRecord[] = [];
  for (const file of files) {
    const text = readFileSync(join(dir, file), 'latin1');
    text.split(/\n%\n/).forEach((body, n) => {
      const trimmed = body.replace(/^%\n/, '').trim();
      if (trimmed.length > 0) records.push({ kind: 'text', id: `${file}/${n}`, group: file, text: trimmed, source: { file: join(dir, file), line: 0 } });
    });
  }
  if (records.length === 0) throw new Error(`no fortunes found in ${dir}`);
  return records;
}

async function prepareFortunes(
  spec: TaskSpec,
  src: TaskSources,
  tokenizer: TextTokenizer,
  seed: number,
): Promise<Omit<PreparedTask, 'spec' | 'modelPath' | 'tokenizerPath'>> {
  const examples = await buildExamples(readFortunes(src.fortunesDir), { tokenizer, seqLen: spec.seqLen, log: new ProblemLog('skip') });
  // Held out by fortune, so every category is represented in the global held-out set.
  const { train, heldOut } = splitTrainHeldOut(examples, 0.1, 'study');
  const shards = splitDirichlet(train, { clients: spec.clients, alpha: spec.alpha, seed, minPerClient: 32 });
  return {
    shards,
    heldOut: evalSlice(heldOut, spec.evalExamples),
    data: {
      source: src.fortunesDir,
      train: train.length,
      heldOut: heldOut.length,
      groups: new Set(train.map((e) => e.group)).size,
      groupsPerClient: shards.map(groupsOf),
    },
  };
}

export async function prepareTask(spec: TaskSpec, src: TaskSources, seed: number): Promise<PreparedTask> {
  const bundled = resolveModelPaths();
  let modelPath = bundled.model;
  if (spec.model.kind === 'built') {
    const dir = join(src.workDir, `model-${spec.id}`);
    mkdirSync(dir, { recursive: true });
    modelPath = join(dir, 'model.onnx');
    writeGpt2(spec.model.config, modelPath);
  }
  const tokenizer = loadTokenizer(bundled.tokenizer);
  const rest = spec.id === 'code' ? await prepareCode(spec, src, tokenizer) : await prepareFortunes(spec, src, tokenizer, seed);
  return { spec, modelPath, tokenizerPath: bundled.tokenizer, ...rest };
}
