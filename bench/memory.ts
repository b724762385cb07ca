// `fedkseed bench memory`: the peak resident set size of a ZO training process (a local run and a
// federation client, batch 1 and 8) beside a plain onnxruntime inference session of the same model, for
// the GPT-2 builder's 124M shape and a ~1.3B one, with what each of the engine's buffers holds. Every
// measurement is its own child process (`fedkseed bench memory-probe`), so one peak never includes
// another's; they run one at a time. The training processes get a memory budget of 1.25 × the inference
// session's peak at the same batch (or --max-memory), and the engine plans within it.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, freemem, totalmem } from 'node:os';
import { resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { fedkseedInvocation } from '../simulate/cli-invocation';
import type { FederationConfig } from '../protocol';
import { EngineLocalTrainer } from '../trainer/client/engine-trainer';
import type { TokenBatch } from '../trainer/data/batches';
import type { Example } from '../trainer/data/examples';
import { openEngine } from '../trainer/engine';
import type { MemoryPlan } from '../trainer/zo/memory-plan';
import type { ParameterMemory } from '../trainer/zo/parameters';
import { SeedSampler } from '../trainer/zo/seed-sampler';
import { ZoTrainer } from '../trainer/zo/zo-trainer';
import { benchCacheDir, cachedModel, cachedModelPath, presetConfig, presetParameters, type BenchPreset } from './models';
import { measureZoStep, type ZoStepTiming } from './zo-step';
import { errorMessage } from '../protocol/errors';

export const MEMORY_SIZES = { '10m': 'zo-10m', '124m': 'gpt2-small', '1.3b': 'gpt-1.3b' } as const satisfies Record<string, BenchPreset>;
export type MemorySize = keyof typeof MEMORY_SIZES;

/** The issue's target: training within this multiple of the inference session's peak at 1.3B. */
export const MEMORY_TARGET = { ratio: 1.25, size: '1.3b' as MemorySize };

const SEQ = 128;

export type ProcessKind = 'inference' | 'train' | 'client';

/** What one child process measures. */
export type MemoryProbe =
  | { readonly kind: 'build'; readonly preset: BenchPreset; readonly cacheDir: string }
  | {
      readonly kind: 'inference';
      readonly model: string;
      readonly vocab: number;
      readonly batch: number;
      readonly seq: number;
      readonly threads: number;
      readonly runs: number;
    }
  | {
      readonly kind: 'train' | 'client';
      readonly model: string;
      readonly vocab: number;
      readonly batch: number;
      readonly seq: number;
      readonly threads: number;
      readonly steps: number;
      readonly rounds: number;
      /** Bytes; null: the engine's automatic budget. */
      readonly maxMemory: number | null;
      /** Local training: steps timed against their own pair of forwards (bench engine's method); 0: plain steps. */
      readonly timedSteps?: number;
    };

export interface ProbeResult {
  /** Peak resident set size of the child: VmHWM where /proc has it, else process.resourceUsage().maxRSS. */
  readonly peakRssBytes: number;
  readonly seconds: number;
  /** Training processes: what the ParameterSet held (memoryUsage()) at the end. */
  readonly buffers?: ParameterMemory;
  readonly plan?: Pick<MemoryPlan, 'budgetBytes' | 'explicitBudget' | 'sums' | 'zStore' | 'totalBytes'>;
  /** Local training with timedSteps: the step against two forwards, under this budget. */
  readonly timing?: Pick<ZoStepTiming, 'stepMs' | 'twoForwardsMs' | 'ratio' | 'samples'>;
}

export interface MemoryRow {
  readonly size: MemorySize;
  readonly parameters: number;
  readonly batch: number;
  readonly kind: ProcessKind;
  readonly peakRssBytes: number;
  /** peak ÷ the inference session's peak at the same batch. */
  readonly ratio: number;
  readonly seconds: number;
  readonly buffers?: ParameterMemory;
  readonly plan?: ProbeResult['plan'];
  /** Everything but the engine's buffers (inference: but the weights): onnxruntime's own and the process's. */
  readonly runtimeBytes: number;
  readonly weightBytes: number;
  /** The process failed (e.g. the budget refused the model): its message; the figures are then 0. */
  readonly error?: string;
  /** Local training: its steps against two forwards, measured inside the process. */
  readonly timing?: ProbeResult['timing'];
}

export interface MemoryBenchOptions {
  readonly sizes?: readonly MemorySize[];
  readonly batches?: readonly number[];
  /** Budget of the training processes in bytes, or 'auto' (the engine's default); default: ratio × inference peak. */
  readonly maxMemory?: number | 'auto';
  readonly budgetRatio?: number;
  /** ZO steps of a local run, and per round of a client (default 2). */
  readonly steps?: number;
  /** Rounds of a client (default 2). */
  readonly rounds?: number;
  /** Local training: time this many steps against their pairs of forwards (default 3; 0: plain steps). */
  readonly timedSteps?: number;
  readonly threads?: number;
  readonly cacheDir?: string;
  readonly log?: (line: string) => void;
}

export interface MemoryBenchResult {
  readonly rows: readonly MemoryRow[];
  /** Sizes left out, and why (not enough free memory). */
  readonly skipped: readonly { readonly size: MemorySize; readonly reason: string }[];
  readonly target: { readonly ratio: number; readonly size: MemorySize; readonly met: boolean | null; readonly worst: number | null };
  readonly threads: number;
  readonly totalMemory: number;
  readonly cacheDir: string;
  readonly seq: number;
  readonly steps: number;
  readonly rounds: number;
  readonly timedSteps: number;
  readonly totalSeconds: number;
}

/** Peak RSS of this process so far. */
export function peakRss(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

function tokens(n: number, salt: number, vocab: number): Int32Array {
  const ids = new Int32Array(n);
  let h = salt >>> 0;
  for (let i = 0; i < n; i++) {
    h = (Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    ids[i] = h % vocab;
  }
  return ids;
}

function syntheticBatch(batch: number, seq: number, vocab: number): TokenBatch {
  const ids = tokens(batch * seq, 9, vocab);
  const inputIds = BigInt64Array.from(ids, (x) => BigInt(x));
  const labels = inputIds.map((_, i) => ((i + 1) % seq === 0 ? -100n : inputIds[i + 1]));
  return { inputIds, attentionMask: new BigInt64Array(batch * seq).fill(1n), labels, batch, seq };
}

/** Runs one probe in this process (the child's side). */
export async function runMemoryProbe(probe: MemoryProbe): Promise<ProbeResult> {
  const started = performance.now();
  const seconds = (): number => (performance.now() - started) / 1000;
  if (probe.kind === 'build') {
    cachedModel(probe.preset, probe.cacheDir);
    return { peakRssBytes: peakRss(), seconds: seconds() };
  }
  if (probe.kind === 'inference') {
    // The model as a user would run it: onnxruntime loads the file (weights as its own initializers).
    const session = await ort.InferenceSession.create(probe.model, { graphOptimizationLevel: 'all', intraOpNumThreads: probe.threads, logSeverityLevel: 3 });
    try {
      const n = probe.batch * probe.seq;
      const feeds = {
        input_ids: new ort.Tensor(
          'int64',
          BigInt64Array.from(tokens(n, 9, probe.vocab), (x) => BigInt(x)),
          [probe.batch, probe.seq],
        ),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [probe.batch, probe.seq]),
      };
      for (let r = 0; r < probe.runs; r++) await session.run(feeds);
    } finally {
      await session.release();
    }
    return { peakRssBytes: peakRss(), seconds: seconds() };
  }
  const engine = await openEngine({
    model: probe.model,
    threads: probe.threads,
    workload: { batch: probe.batch, seq: probe.seq },
    ...(probe.maxMemory !== null ? { maxMemory: probe.maxMemory } : {}),
  });
  try {
    let timing: ProbeResult['timing'];
    if (probe.kind === 'train' && (probe.timedSteps ?? 0) > 0) {
      // fedkseed train's loop, each step timed against two forwards of its own batch (as bench engine does).
      const t = await measureZoStep(engine.weights, engine.session, { batch: probe.batch, seq: probe.seq, vocab: probe.vocab, samples: probe.timedSteps });
      timing = { stepMs: t.stepMs, twoForwardsMs: t.twoForwardsMs, ratio: t.ratio, samples: t.samples };
    } else if (probe.kind === 'train') {
      // fedkseed train's loop: steps on the working weights, no coefficients applied.
      const batch = syntheticBatch(probe.batch, probe.seq, probe.vocab);
      const trainer = new ZoTrainer(engine.weights, engine.session, { federationSeed: 7, k: 4096, epsilon: 1e-3, eta: 1e-6 });
      await trainer.train({ steps: probe.steps, seeds: new SeedSampler(4096, 3), nextBatch: () => batch });
    } else {
      // A federation client's rounds: the round's coefficient change, the digest, τ local steps with the
      // loss before and after on held-out rows, back to the replica.
      const config: FederationConfig = {
        k: 4096,
        federationSeed: 7,
        epsilon: 1e-3,
        eta: 1e-6,
        tau: probe.steps,
        batchSize: probe.batch,
        sampling: 'uniform',
        weighting: 'examples',
        rounds: probe.rounds,
        clientsPerRound: 1,
        deadlineMs: 60_000,
      };
      const examples: Example[] = Array.from({ length: 2 * probe.batch }, (_, n) => ({
        id: `m${n}`,
        group: 'bench',
        splitKey: `m${n}`,
        ids: tokens(probe.seq, 100 + n, probe.vocab),
      }));
      const trainer = new EngineLocalTrainer(
        engine,
        { train: examples.slice(probe.batch), heldOut: examples.slice(0, probe.batch) },
        { batchSize: probe.batch, seqLen: probe.seq, clientSeed: 1, heldOutExamples: probe.batch },
      );
      for (let round = 1; round <= probe.rounds; round++) {
        const indices = Uint32Array.from({ length: 16 }, (_, i) => (round * 257 + i * 61) % 4096);
        const values = Float64Array.from(indices, (j) => ((j * 7919) % 2_000_001) - 1_000_000);
        await trainer.applyCoefficientDelta({ indices, values }, config);
        await trainer.digest();
        await trainer.trainRound({ round, steps: probe.steps, probabilities: null, config });
      }
    }
    const { budgetBytes, explicitBudget, sums, zStore, totalBytes } = engine.memoryPlan;
    return {
      peakRssBytes: peakRss(),
      seconds: seconds(),
      buffers: engine.params.memoryUsage(),
      plan: { budgetBytes, explicitBudget, sums, zStore, totalBytes },
      ...(timing ? { timing } : {}),
    };
  } finally {
    await engine.close();
  }
}

/** Starts `fedkseed bench memory-probe <probe>` and returns its result (its last stdout line). */
export function probeInChild<P extends { readonly kind: string }, R = ProbeResult>(probe: P): Promise<R> {
  const invocation = fedkseedInvocation();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(invocation.command, [...invocation.args, 'bench', 'memory-probe', JSON.stringify(probe)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && last.startsWith('{')) return resolvePromise(JSON.parse(last) as R);
      reject(
        new Error(
          `the ${probe.kind} probe exited with ${signal ?? code}${signal === 'SIGKILL' ? ' (killed: out of memory?)' : ''}: ${err.trim().split('\n').slice(-3).join(' | ') || '(no output)'}`,
        ),
      );
    });
  });
}

const GiB = 2 ** 30;

export async function runMemoryBench(options: MemoryBenchOptions = {}): Promise<MemoryBenchResult> {
  const started = performance.now();
  const sizes = options.sizes ?? ['124m', '1.3b'];
  const batches = options.batches ?? [1, 8];
  const ratio = options.budgetRatio ?? MEMORY_TARGET.ratio;
  const steps = options.steps ?? 2;
  const rounds = options.rounds ?? 2;
  const timedSteps = options.timedSteps ?? 3;
  const threads = options.threads ?? availableParallelism();
  const cacheDir = resolve(options.cacheDir ?? benchCacheDir());
  const log = options.log ?? (() => {});
  const rows: MemoryRow[] = [];
  const skipped: { size: MemorySize; reason: string }[] = [];
  for (const size of sizes) {
    const preset = MEMORY_SIZES[size];
    const parameters = presetParameters(preset);
    const weightBytes = parameters * 4;
    // The largest process here (building the model, or training it) holds about the weights 1.5 times.
    const need = 1.5 * weightBytes + GiB;
    if (freemem() < need) {
      const reason = `needs about ${(need / GiB).toFixed(1)} GiB available, ${(freemem() / GiB).toFixed(1)} GiB are`;
      log(`${size}: skipped (${reason})`);
      skipped.push({ size, reason });
      continue;
    }
    log(`${size}: building or reusing ${preset} (${parameters.toLocaleString('en-US')} parameters) in ${cacheDir}…`);
    await probeInChild({ kind: 'build', preset, cacheDir });
    const model = cachedModelPath(preset, cacheDir);
    const vocab = presetConfig(preset).vocab;
    for (const batch of batches) {
      const inference = await probeInChild({ kind: 'inference', model, vocab, batch, seq: SEQ, threads, runs: 2 });
      const base: Omit<MemoryRow, 'kind' | 'peakRssBytes' | 'ratio' | 'seconds' | 'runtimeBytes'> = { size, parameters, batch, weightBytes };
      rows.push({
        ...base,
        kind: 'inference',
        peakRssBytes: inference.peakRssBytes,
        ratio: 1,
        seconds: inference.seconds,
        runtimeBytes: inference.peakRssBytes - weightBytes,
      });
      log(`${size} batch ${batch} inference session: peak ${(inference.peakRssBytes / GiB).toFixed(2)} GiB (${inference.seconds.toFixed(0)} s)`);
      const maxMemory = options.maxMemory === 'auto' ? null : (options.maxMemory ?? Math.floor(ratio * inference.peakRssBytes));
      for (const kind of ['train', 'client'] as const) {
        let r: ProbeResult;
        try {
          r = await probeInChild({ kind, model, vocab, batch, seq: SEQ, threads, steps, rounds, maxMemory, ...(kind === 'train' ? { timedSteps } : {}) });
        } catch (e) {
          const error = errorMessage(e);
          log(`${size} batch ${batch} ${kind}: ${error}`);
          rows.push({ ...base, kind, peakRssBytes: 0, ratio: 0, seconds: 0, runtimeBytes: 0, error });
          continue;
        }
        const b = r.buffers as ParameterMemory;
        const held = b.weights + b.base + b.sums + b.zStore + b.scratch;
        rows.push({
          ...base,
          kind,
          peakRssBytes: r.peakRssBytes,
          ratio: r.peakRssBytes / inference.peakRssBytes,
          seconds: r.seconds,
          buffers: b,
          plan: r.plan,
          runtimeBytes: r.peakRssBytes - held,
          ...(r.timing ? { timing: r.timing } : {}),
        });
        log(
          `${size} batch ${batch} ${kind === 'train' ? 'local training' : 'federation client'}: peak ${(r.peakRssBytes / GiB).toFixed(2)} GiB = ${(r.peakRssBytes / inference.peakRssBytes).toFixed(3)}× inference (budget ${((r.plan?.budgetBytes ?? 0) / GiB).toFixed(2)} GiB; S ${r.plan?.sums}, z store ${((r.plan?.zStore ?? 0) * 100).toFixed(0)}%${r.timing ? `; step ${r.timing.ratio.toFixed(3)}× two forwards` : ''}; ${r.seconds.toFixed(0)} s)`,
        );
      }
    }
  }
  const judged = rows.filter((r) => r.size === MEMORY_TARGET.size && r.kind !== 'inference');
  const worst = judged.length === 0 ? null : judged.some((r) => r.error) ? Infinity : Math.max(...judged.map((r) => r.ratio));
  return {
    rows,
    skipped,
    target: { ratio: MEMORY_TARGET.ratio, size: MEMORY_TARGET.size, met: worst === null ? null : worst <= MEMORY_TARGET.ratio, worst },
    threads,
    totalMemory: totalmem(),
    cacheDir,
    seq: SEQ,
    steps,
    rounds,
    timedSteps,
    totalSeconds: (performance.now() - started) / 1000,
  };
}
