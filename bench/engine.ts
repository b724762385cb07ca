// `fedkseed bench engine`: the ZO step against two loss forwards at ~10M and ~124M parameters (GPT-2
// builder shapes, seq 128, batch 1 and 8) and the perturbation kernels, next to the engine's targets.
// Models are built once into a cache folder outside the working tree (benchCacheDir) and reused.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { DeviceModelSession, DeviceWeights } from '../trainer/device/resident';
import { webgpuAdapterChoice, currentProviderEnvironment } from '../trainer/device/providers';
import type { Generator } from '../protocol';
import { describeAdapterChoice } from '../trainer/device/adapters';
import { GPT2_PRESETS, gpt2ParamCount, loadModel, rewriteForTraining, type LoadedModel } from '../trainer/model';
import { ModelSession } from '../trainer/device/session';
import { benchCacheDir, cachedModel } from './models';
import { seedKey } from '../trainer/zo/generator';
import { ParameterSet } from '../trainer/zo/parameters';
import { SeedSampler } from '../trainer/zo/seed-sampler';
import { ZoTrainer } from '../trainer/zo/zo-trainer';
import { runKernelBench, type KernelBenchResult } from './kernels';
import { deviceStepCounts, type DeviceStepCounts } from './device-counts';
import { measureZoStep, median, type ZoStepTiming } from './zo-step';
import type { TokenBatch } from '../trainer/data/batches';

export const ENGINE_SIZES = { '1m': 'zo-1m', '10m': 'zo-10m', '124m': 'gpt2-small' } as const satisfies Record<string, keyof typeof GPT2_PRESETS>;
export type EngineSize = keyof typeof ENGINE_SIZES;

/** Targets of the engine (issue): step ≤ ratio × two forwards on the ~124M model; kernel throughput. */
export const ENGINE_TARGETS = {
  stepOverTwoForwards: { 1: 1.3, 8: 1.1 } as Readonly<Record<number, number>>,
  stepTargetSize: '124m' as EngineSize,
  perturbGParamsPerSecond: 0.9,
  blockedRebuildSpeedup: 2,
};

export interface EngineBenchOptions {
  readonly sizes?: readonly EngineSize[];
  /** About a minute: the small model only, fewer rounds, a smaller kernel buffer. */
  readonly quick?: boolean;
  /** onnxruntime intra-op threads (default: all cores). */
  readonly threads?: number;
  /** Where the generated models are kept (default: benchCacheDir()). */
  readonly cacheDir?: string;
  /**
   * 'webgpu': also measure the device-resident engine on WebGPU, with the CPU rows measured in the same
   * run for the speed-up (default 'cpu': the CPU rows only).
   */
  readonly provider?: 'cpu' | 'webgpu';
  readonly log?: (line: string) => void;
}

/** One WebGPU row: the CPU table's step timing, plus what only a device has. */
export interface DeviceStepResult extends ZoStepTiming {
  /** Host↔device bytes per steady-state ZO step (BusCounter: every host-side input and output). */
  readonly busBytesPerStep: number;
  /** The CPU engine's step on the same model and batch, this run. */
  readonly cpuStepMs: number;
  /** cpuStepMs / stepMs. */
  readonly speedup: number;
}

export interface DeviceSizeResult {
  readonly steps: readonly DeviceStepResult[];
  /** Fused two-seed passes over all weights on the device, parameters per second (synced). */
  readonly perturbParamsPerSecond: number;
  /** Dispatches and device bytes per step, counted from the graphs, and the step they predict on named GPUs. */
  readonly counts: DeviceStepCounts;
  /** The same rows under the rank-1 generator (its passes expand each seed's compact z on the device). */
  readonly rank1: { readonly steps: readonly DeviceStepResult[]; readonly perturbParamsPerSecond: number };
}

export interface StepTarget {
  readonly target: number;
  readonly met: boolean;
}

export interface EngineSizeResult {
  readonly size: EngineSize;
  readonly preset: keyof typeof GPT2_PRESETS;
  readonly parameters: number;
  readonly seq: number;
  readonly kernel: string;
  readonly resident: boolean;
  readonly executionProvider: string;
  /** Each with its target where the issue sets one (the ~124M model). */
  readonly steps: readonly (ZoStepTiming & { readonly target: StepTarget | null })[];
  /** With provider 'webgpu'. */
  readonly webgpu?: DeviceSizeResult;
}

export interface EngineBenchResult {
  readonly threads: number;
  readonly cores: number;
  readonly quick: boolean;
  readonly sizes: readonly EngineSizeResult[];
  readonly kernels: KernelBenchResult;
  readonly totalSeconds: number;
  /** Where the models were built or found. */
  readonly cacheDir: string;
  /** Peak resident set size of this process over the run, from process.resourceUsage().maxRSS. */
  readonly peakRssBytes: number;
  readonly provider: 'cpu' | 'webgpu';
  /** With 'webgpu': the adapter and what was passed over; whether it is a software rasteriser (figures: correctness only). */
  readonly adapter?: { readonly description: string; readonly software: boolean } | null;
}

const SEQ = 128;

export { benchCacheDir, cachedModel } from './models';

type SizeOptions = Required<Pick<EngineBenchOptions, 'quick' | 'threads' | 'cacheDir' | 'log' | 'provider'>>;

const stepSamples = (o: SizeOptions, big: boolean, batch: number): number => (o.quick ? 4 : big ? (batch === 8 ? 5 : 9) : 9);

/** The same measurements on WebGPU: weights resident, every pass and forward on the device. */
async function benchDevice(
  size: EngineSize,
  model: LoadedModel,
  params: ParameterSet,
  cpuSteps: readonly ZoStepTiming[],
  o: SizeOptions,
): Promise<DeviceSizeResult> {
  const weights = await DeviceWeights.create(params);
  const session = new DeviceModelSession(model, weights, { maxSequence: SEQ });
  try {
    const counts = await deviceStepCounts(
      rewriteForTraining(model),
      params,
      cpuSteps.map((c) => session.shapeFor(c.batch, SEQ)),
      params.parameterCount,
    );
    const p = counts.perturbation;
    o.log(
      `${size} webgpu counts (from the graphs): iid ${counts.perStep.iid.dispatches} dispatches and ${counts.perStep.iid.bytesPerParameter.toFixed(0)} device bytes per parameter per step, ` +
        `rank1 ${counts.perStep.rank1.dispatches} and ${counts.perStep.rank1.bytesPerParameter.toFixed(0)}; perturbation iid ${p.cachedZ.dispatches} dispatches, ${p.cachedZ.bytesPerParameter.toFixed(0)} B/param, ` +
        `rank1 ${p.rank1.dispatches}, ${p.rank1.bytesPerParameter.toFixed(0)} B/param (iid hashing every pass: ${p.hashEveryPass.dispatches}, ${p.hashEveryPass.bytesPerParameter.toFixed(0)} B/param); ` +
        `device memory at a run's peak, counted: iid ${times(p.cachedZ.peakOverWeights)}, rank1 ${times(p.rank1.peakOverWeights)} the weights; ` +
        `rank1 keeping no z: ${p.rank1NoKeptZ.dispatches} dispatches, ${p.rank1NoKeptZ.bytesPerParameter.toFixed(0)} B/param, ${times(p.rank1NoKeptZ.peakOverWeights)}`,
    );
    const iid = await timeDevice(size, model, params, weights, session, cpuSteps, o, 'iid');
    params.setGenerator('rank1');
    try {
      const rank1 = await timeDevice(size, model, params, weights, session, cpuSteps, o, 'rank1');
      return { ...iid, counts, rank1 };
    } finally {
      params.setGenerator('iid');
    }
  } finally {
    await session.release();
    await weights.release();
  }
}

/** The step rows and the fused passes' throughput on the device, under the set's generator. */
async function timeDevice(
  size: EngineSize,
  model: LoadedModel,
  params: ParameterSet,
  weights: DeviceWeights,
  session: DeviceModelSession,
  cpuSteps: readonly ZoStepTiming[],
  o: SizeOptions,
  generator: Generator,
): Promise<{ steps: DeviceStepResult[]; perturbParamsPerSecond: number }> {
  const steps: DeviceStepResult[] = [];
  {
    for (const cpu of cpuSteps) {
      const { batch } = cpu;
      const timing = await measureZoStep(weights, session, {
        batch,
        seq: SEQ,
        vocab: model.io.vocab ?? 2,
        samples: stepSamples(o, size === '124m', batch),
        // A device run may return before the device is done: the reference pair starts on an idle device.
        sync: () => weights.sync(),
      });
      // Bytes per steady-state step (its fused pass, −2εz pass and two forwards), between step events.
      const trainer = new ZoTrainer(weights, session, { federationSeed: 7, k: 4096, epsilon: 1e-3, eta: 1e-6 });
      const probe = syntheticBatch(batch, model.io.vocab ?? 2);
      const totals: number[] = [];
      const bus = weights.counter;
      await trainer.train({
        steps: 4,
        seeds: new SeedSampler(4096, 3),
        nextBatch: () => probe,
        onStep: () => totals.push(bus.hostToDevice + bus.deviceToHost),
      });
      const between = totals.slice(1).map((t, i) => t - totals[i]);
      const busBytesPerStep = median(between);
      const row = { ...timing, busBytesPerStep, cpuStepMs: cpu.stepMs, speedup: cpu.stepMs / timing.stepMs };
      steps.push(row);
      o.log(
        `${size} batch ${batch} webgpu ${generator}: step ${timing.stepMs.toFixed(1)} ms, two forwards ${timing.twoForwardsMs.toFixed(1)} ms, ratio ${timing.ratio.toFixed(3)}, ${busBytesPerStep} bytes/step across the bus, ${row.speedup.toFixed(2)}× the CPU step`,
      );
    }
    // Perturbation throughput: fused passes chained on the device, then one sync, minus a sync alone.
    const passes = o.quick ? 4 : 10;
    const rounds: number[] = [];
    for (let r = 0; r < 3; r++) {
      await weights.sync();
      let t = performance.now();
      await weights.sync();
      const syncMs = performance.now() - t;
      t = performance.now();
      for (let i = 0; i < passes; i++) await weights.perturb2(seedKey(7, i), 1e-3, seedKey(7, i + 1), -1e-3);
      await weights.sync();
      rounds.push((passes * params.indexSpan) / (Math.max(1e-3, performance.now() - t - syncMs) / 1000));
    }
    const perturbParamsPerSecond = median(rounds);
    o.log(`${size} webgpu ${generator}: fused perturbation ${(perturbParamsPerSecond / 1e9).toFixed(3)} G params/s`);
    return { steps, perturbParamsPerSecond };
  }
}

function syntheticBatch(batch: number, vocab: number): TokenBatch {
  const n = batch * SEQ;
  const inputIds = new BigInt64Array(n);
  for (let i = 0; i < n; i++) inputIds[i] = BigInt((i * 7919) % vocab);
  const labels = new BigInt64Array(n);
  for (let i = 0; i < n; i++) labels[i] = (i + 1) % SEQ === 0 ? -100n : inputIds[i + 1];
  return { inputIds, attentionMask: new BigInt64Array(n).fill(1n), labels, batch, seq: SEQ };
}

async function benchSize(size: EngineSize, o: SizeOptions): Promise<EngineSizeResult> {
  const preset = ENGINE_SIZES[size];
  o.log(`${size}: building or reusing ${preset} (${gpt2ParamCount(GPT2_PRESETS[preset]).toLocaleString()} parameters)…`);
  // Deferred, as the engine loads: the ParameterSet reads the weights from the file into its own memory.
  const model = await loadModel(cachedModel(preset, o.cacheDir), { defer: true });
  const params = new ParameterSet(model.weights, { parallelPasses: 'auto' });
  const session = await ModelSession.create(rewriteForTraining(model), { intraOpNumThreads: o.threads, executionProviders: ['cpu'] });
  params.bindTo(session);
  const big = size === '124m';
  const steps: EngineSizeResult['steps'][number][] = [];
  let webgpu: DeviceSizeResult | undefined;
  try {
    for (const batch of [1, 8]) {
      // Few samples at 124M keep the whole run within minutes (a batch-8 step and its pair take ~6 s there).
      const samples = stepSamples(o, big, batch);
      const timing = await measureZoStep(params, session, { batch, seq: SEQ, vocab: model.io.vocab ?? 2, samples });
      const limit = size === ENGINE_TARGETS.stepTargetSize ? ENGINE_TARGETS.stepOverTwoForwards[batch] : undefined;
      const target = limit === undefined ? null : { target: limit, met: timing.ratio <= limit };
      steps.push({ ...timing, target });
      o.log(
        `${size} batch ${batch}: step ${timing.stepMs.toFixed(1)} ms, two forwards ${timing.twoForwardsMs.toFixed(1)} ms, ratio ${timing.ratio.toFixed(3)}${target ? ` (target ≤ ${target.target} ${mark(target.met)})` : ''}`,
      );
    }
    if (o.provider === 'webgpu') webgpu = await benchDevice(size, model, params, steps, o);
  } finally {
    params.dispose();
    await session.release();
  }
  return {
    size,
    preset,
    parameters: params.parameterCount,
    seq: SEQ,
    kernel: params.kernel,
    resident: params.resident,
    executionProvider: session.executionProvider,
    steps,
    ...(webgpu ? { webgpu } : {}),
  };
}

export const mark = (met: boolean): string => (met ? '✓' : '✗');

/** A multiple of the weights' bytes, or '?' where a size was not derived. */
export const times = (x: number | null): string => (x === null ? '?' : `${x.toFixed(2)}×`);

export async function runEngineBench(options: EngineBenchOptions = {}): Promise<EngineBenchResult> {
  const started = performance.now();
  const quick = options.quick ?? false;
  const provider = options.provider ?? 'cpu';
  const o: SizeOptions = {
    quick,
    threads: options.threads ?? availableParallelism(),
    cacheDir: resolve(options.cacheDir ?? benchCacheDir()),
    log: options.log ?? (() => {}),
    provider,
  };
  let adapter: EngineBenchResult['adapter'] = null;
  if (provider === 'webgpu') {
    const choice = webgpuAdapterChoice(currentProviderEnvironment());
    adapter = choice ? { description: describeAdapterChoice(choice), software: choice.chosen?.software ?? false } : null;
    o.log(`webgpu adapter: ${adapter?.description ?? 'not identified on this platform'}`);
    if (adapter?.software) o.log('the adapter is a software rasteriser: its figures check correctness only and say nothing about a GPU');
  }
  const sizes = options.sizes ?? (quick ? (['10m'] as const) : (['10m', '124m'] as const));
  const results: EngineSizeResult[] = [];
  for (const size of sizes) results.push(await benchSize(size, o));
  o.log('kernels: perturbation and rebuild passes, one thread…');
  // 16M parameters (64 MiB of float32) is past the last-level cache, like real weights; quick: 4M.
  const kernels = runKernelBench(quick ? { params: 4 << 20, rebuildParams: 128 << 10, repeats: 3 } : { params: 16 << 20, repeats: 3 });
  return {
    threads: o.threads,
    cores: availableParallelism(),
    quick,
    sizes: results,
    kernels,
    totalSeconds: (performance.now() - started) / 1000,
    cacheDir: o.cacheDir,
    peakRssBytes: process.resourceUsage().maxRSS * 1024, // maxRSS is in kilobytes
    provider,
    ...(provider === 'webgpu' ? { adapter } : {}),
  };
}
