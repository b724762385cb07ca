// `fedkseed bench device-memory`: what a step's perturbation passes hold on the device, measured where the
// device's memory is the process's (lavapipe, Mesa's software Vulkan, allocates in host memory), beside the
// count from the graphs (graphCost's peakBytes). Each way of running the passes is its own child process
// (`fedkseed bench memory-probe`, as bench memory's), so one high-water never includes another's. On a GPU the process
// figures are host memory only; the counts hold on any device.
import { loadModel } from '../trainer/model/load';
import { DeviceWeights } from '../trainer/device/resident';
import { seedKey } from '../trainer/zo/generator';
import { ParameterSet } from '../trainer/zo/parameters';
import { benchCacheDir, cachedModel, type BenchPreset } from './models';
import { peakRss, probeInChild } from './memory';
import { perturbationCounts, type PerturbationCounts } from './device-counts';

/** How the passes run: iid with its z kept, rank-1 with its z kept, rank-1 expanding every seed. */
export const DEVICE_PASS_MODES = ['iid', 'rank1', 'rank1-no-kept-z'] as const;
export type DevicePassMode = (typeof DEVICE_PASS_MODES)[number];

export interface DeviceMemoryProbe {
  readonly kind: 'device-passes';
  readonly model: string;
  readonly mode: DevicePassMode;
  /** ZO steps' worth of passes (restore/update + next seed, then −2εz); 0: the upload only. */
  readonly steps: number;
}

export interface DeviceMemoryProbeResult {
  readonly parameters: number;
  /** The span's float32 bytes: "the weights". */
  readonly weightBytes: number;
  /** The process's high-water once the weights are on the device (no pass yet). */
  readonly afterUploadBytes: number;
  /** …and after the passes. */
  readonly afterPassesBytes: number;
}

export interface DeviceMemoryRow extends DeviceMemoryProbeResult {
  readonly mode: DevicePassMode;
  /** The largest run's peak counted from its graph, in weights (graphCost.peakBytes). */
  readonly countedPeak: number | null;
}

/** The child's side: upload, then the passes of `steps` ZO steps, reading the high-water after each part. */
export async function runDeviceMemoryProbe(probe: DeviceMemoryProbe): Promise<DeviceMemoryProbeResult> {
  const model = await loadModel(probe.model, { defer: true });
  const params = new ParameterSet(model.weights, {});
  params.setGenerator(probe.mode === 'iid' ? 'iid' : 'rank1');
  const weights = await DeviceWeights.create(params, undefined, { keepRank1Z: probe.mode !== 'rank1-no-kept-z' });
  try {
    await weights.sync();
    const afterUploadBytes = peakRss();
    for (let i = 0; i < probe.steps; i++) {
      await weights.perturb2(seedKey(7, i), -1e-3, seedKey(7, i + 1), 1e-3);
      await weights.perturb(seedKey(7, i + 1), -2e-3);
    }
    await weights.sync();
    return { parameters: params.parameterCount, weightBytes: 4 * params.indexSpan, afterUploadBytes, afterPassesBytes: peakRss() };
  } finally {
    await weights.release();
    params.dispose();
  }
}

export interface DeviceMemoryBenchOptions {
  readonly preset?: BenchPreset;
  readonly steps?: number;
  readonly modes?: readonly DevicePassMode[];
  readonly cacheDir?: string;
  readonly log?: (line: string) => void;
}

export async function runDeviceMemoryBench(options: DeviceMemoryBenchOptions = {}): Promise<{ preset: BenchPreset; rows: DeviceMemoryRow[] }> {
  const preset = options.preset ?? 'gpt2-small';
  const model = cachedModel(preset, options.cacheDir ?? benchCacheDir());
  const params = new ParameterSet((await loadModel(model, { defer: true })).weights, {});
  const rows: DeviceMemoryRow[] = [];
  try {
    const counts = perturbationCounts(params);
    const counted: Record<DevicePassMode, PerturbationCounts> = { iid: counts.cachedZ, rank1: counts.rank1, 'rank1-no-kept-z': counts.rank1NoKeptZ };
    for (const mode of options.modes ?? DEVICE_PASS_MODES) {
      options.log?.(`${preset} ${mode}: upload and ${options.steps ?? 2} steps of passes, in a process of its own…`);
      const probe: DeviceMemoryProbe = { kind: 'device-passes', model, mode, steps: options.steps ?? 2 };
      const result = await probeInChild<DeviceMemoryProbe, DeviceMemoryProbeResult>(probe);
      rows.push({ mode, countedPeak: counted[mode].peakOverWeights, ...result });
    }
  } finally {
    params.dispose();
  }
  return { preset, rows };
}
