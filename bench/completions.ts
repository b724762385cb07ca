// `fedkseed bench completions`: what a suggestion in the editor costs with the bundled model, measured
// through the trainer host's own request path (TrainerSession.complete, without the stdio transport).
// For N prompts cut from code at line ends: the first token's time and a 16-token suggestion's time
// (p50/p95) and its tokens per second — over the KV cache, without it, and over the cache while a local
// run trains in the same process — and what the suggestions cost the run (ZO steps per second alone vs
// while suggestions are asked for back to back).
import { loadDataset } from '../trainer/data/dataset';
import { loadTokenizer, type TextTokenizer } from '../trainer/data/tokenizer';
import { resolveModelPaths } from '../trainer/paths';
import type { HostNotifier } from '../trainer/host/notifier';
import { TrainerSession } from '../trainer/host/session';
import { COMPLETION_DEFAULTS } from '../contracts/defaults';
import type { CompleteResult } from '../contracts/trainer-payloads';
import { median } from './zo-step';

export interface CompletionsBenchOptions {
  /** Folder of code the prompts are cut from and the run trains on. */
  readonly data: string;
  readonly include?: readonly string[];
  /** Prompts, each requested once per condition (default 24). */
  readonly prompts?: number;
  /** New tokens per suggestion (default 16). */
  readonly tokens?: number;
  /** Threads of the engine (training); the completion session has COMPLETION_DEFAULTS.threads. */
  readonly threads?: number;
  /** Seconds of training measured alone and with suggestions (default 8 each). */
  readonly trainingSeconds?: number;
  readonly log?: (line: string) => void;
}

export interface LatencyRow {
  readonly condition: string;
  readonly firstTokenP50: number;
  readonly firstTokenP95: number;
  readonly suggestionP50: number;
  readonly suggestionP95: number;
  readonly tokensPerSecondP50: number;
  readonly meanTokens: number;
  readonly decoder: string;
}

export interface CompletionsBenchResult {
  readonly model: string;
  readonly prompts: number;
  readonly tokens: number;
  readonly engineThreads: number;
  readonly completionThreads: number;
  readonly rows: LatencyRow[];
  /** ZO steps per second of the run alone and while suggestions are asked for back to back. */
  readonly training: { readonly alone: number; readonly withCompletions: number; readonly suggestions: number; readonly snapshots: number };
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const quiet: HostNotifier = {
  status: () => undefined,
  steps: () => undefined,
  evaluation: () => undefined,
  metrics: () => undefined,
  roundCompleted: () => undefined,
  seedProbabilities: () => undefined,
  log: () => undefined,
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Prefixes ending at a line end, from windows of the data's text. */
async function cutPrompts(tokenizer: TextTokenizer, o: CompletionsBenchOptions, n: number): Promise<string[]> {
  const ds = await loadDataset(o.data, { tokenizer, seqLen: 128, include: o.include ? [...o.include] : ['**/*.ts'], heldOutFraction: 0 });
  const prompts: string[] = [];
  const step = Math.max(1, Math.floor(ds.train.length / n));
  for (let i = 0; prompts.length < n && i < ds.train.length; i += step) {
    const text = tokenizer.decode(ds.train[i].ids);
    const cut = text.lastIndexOf('\n', Math.floor(text.length * 0.8));
    if (cut > 40) prompts.push(text.slice(0, cut + 1));
  }
  if (prompts.length === 0) throw new Error(`no prompts could be cut from ${o.data}`);
  return prompts;
}

export async function runCompletionsBench(o: CompletionsBenchOptions): Promise<CompletionsBenchResult> {
  const n = o.prompts ?? 24;
  const tokens = o.tokens ?? 16;
  const threads = o.threads ?? 2;
  const seconds = o.trainingSeconds ?? 8;
  const log = o.log ?? (() => undefined);
  const session = new TrainerSession(quiet);
  try {
    const info = await session.initialize({ provider: 'cpu', threads, kernel: 'auto' });
    const prompts = await cutPrompts(loadTokenizer(resolveModelPaths(undefined).tokenizer), o, n);
    const ask = (prefix: string, useCache: boolean): Promise<CompleteResult> =>
      session.complete({ prefix, source: 'current', maxTokens: tokens, sampling: { mode: 'greedy' }, stop: 'none', useCache }, new AbortController().signal);
    const measure = async (condition: string, useCache: boolean): Promise<LatencyRow> => {
      await ask(prompts[0], useCache); // warm-up: sessions made, weights copied
      const results: CompleteResult[] = [];
      for (const p of prompts) results.push(await ask(p, useCache));
      const first = results.map((r) => r.firstTokenMs ?? Number.NaN);
      const total = results.map((r) => r.totalMs);
      const row: LatencyRow = {
        condition,
        firstTokenP50: percentile(first, 50),
        firstTokenP95: percentile(first, 95),
        suggestionP50: percentile(total, 50),
        suggestionP95: percentile(total, 95),
        tokensPerSecondP50: median(results.map((r) => (r.tokens * 1000) / r.totalMs)),
        meanTokens: results.reduce((a, r) => a + r.tokens, 0) / results.length,
        decoder: results[0].decoder,
      };
      log(`${condition}: first token p50 ${row.firstTokenP50.toFixed(1)} ms, suggestion p50 ${row.suggestionP50.toFixed(1)} ms`);
      return row;
    };
    const rows = [await measure('KV cache, idle', true), await measure('no cache, idle', false)];

    // A long local run in the same process; measured alone, then with suggestions asked for back to back.
    const stop = new AbortController();
    const training = session.startTraining(
      {
        data: { path: o.data, include: o.include ? [...o.include] : ['**/*.ts'], heldOutFraction: 0, seqLen: 128 },
        steps: 1_000_000,
        k: 4096,
        federationSeed: 42,
        epsilon: 1e-3,
        eta: 5e-5,
        batchSize: 4,
        evalEvery: 0,
        evalExamples: 1,
      },
      stop.signal,
    );
    while (session.reporter.status.step < 3) await sleep(50);
    const window = async (body: () => Promise<number>): Promise<{ rate: number; count: number }> => {
      const s0 = session.reporter.status.step;
      const t0 = performance.now();
      const count = await body();
      return { rate: ((session.reporter.status.step - s0) * 1000) / (performance.now() - t0), count };
    };
    const alone = await window(async () => {
      await sleep(seconds * 1000);
      return 0;
    });
    let snapshotsBefore = 0;
    const withCompletions = await window(async () => {
      const until = performance.now() + seconds * 1000;
      let count = 0;
      snapshotsBefore = session.completionSnapshots;
      while (performance.now() < until) {
        await ask(prompts[count % prompts.length], true);
        count++;
      }
      return count;
    });
    const snapshots = session.completionSnapshots - snapshotsBefore;
    rows.push(await measure('KV cache, while training', true));
    stop.abort();
    await training;
    return {
      model: info.modelPath,
      prompts: prompts.length,
      tokens,
      engineThreads: threads,
      completionThreads: COMPLETION_DEFAULTS.threads,
      rows,
      training: { alone: alone.rate, withCompletions: withCompletions.rate, suggestions: withCompletions.count, snapshots },
    };
  } finally {
    await session.dispose();
  }
}
