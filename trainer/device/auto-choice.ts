// What 'auto' picks among the providers that can run here, and why: a pure rule (decideAuto) fed what was
// predicted (the adapter survey), what the WebGPU session actually opened (observeOpenedAdapter) and an
// optional cached measurement of both paths on this machine (provider-speed.json in the user's cache).
//
// The rule, in order:
// 1. A WebGPU session that opened a software adapter (lavapipe) is refused: it trains slower than the CPU
//    provider. The survey already rules out a predicted software adapter; this catches a wrong prediction.
// 2. WebGPU before CUDA: WebGPU is the device-resident path (weights stay on the device, a few KiB cross
//    the bus per step), while CUDA from Node feeds host weights on every forward (8·P bytes per step over
//    the bus) and perturbs on the CPU. CUDA goes first only when a measurement on this adapter says its
//    ZO step is faster.
// 3. Otherwise the first available of webgpu, cuda, dml, cpu.
import { readdirSync, readFileSync, mkdirSync, writeFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { singleNodeGraph } from '../model/onnx';
import type { WebGpuAdapter } from './adapters';
import type { ProviderName } from './provider-names';

/** What the process shows about the adapter a WebGPU session opened. */
export type AdapterObservation =
  | { readonly readable: true; readonly software: boolean; readonly name: string; readonly evidence: string }
  | { readonly readable: false; readonly note: string };

/** A short measurement of both paths on one adapter (median ZO step of the same model and batch). */
export interface ProviderSpeed {
  /** The WebGPU adapter it was measured on (its name as surveyed); another adapter ignores it. */
  readonly adapter: string;
  readonly cudaStepMs: number;
  readonly webgpuStepMs: number;
  readonly steps: number;
  /** What was stepped, e.g. "zo-1m batch 4 × 64". */
  readonly workload: string;
  readonly measuredAt: string;
}

export interface AutoInputs {
  /** The providers 'auto' may still use here (not ruled out, not failed). */
  readonly available: readonly ProviderName[];
  /** The adapter the survey predicts WebGPU runs on (null: none could be named). */
  readonly predicted: WebGpuAdapter | null;
  /** Present once a WebGPU session exists: what it opened. */
  readonly opened?: AdapterObservation;
  readonly measurement?: ProviderSpeed | null;
}

export interface AutoDecision {
  /** null when nothing is available. */
  readonly choice: ProviderName | null;
  readonly reason: string;
  /** WebGPU refused for what its session opened (the attempt's reason). */
  readonly refusedWebGpu?: string;
}

const PREFERENCE: readonly ProviderName[] = ['webgpu', 'cuda', 'dml', 'cpu'];

export function decideAuto(inputs: AutoInputs): AutoDecision {
  let available = PREFERENCE.filter((p) => inputs.available.includes(p));
  let refusedWebGpu: string | undefined;
  const opened = inputs.opened;
  if (available.includes('webgpu') && opened?.readable && opened.software) {
    const predicted = inputs.predicted;
    refusedWebGpu =
      predicted && !predicted.software
        ? `the session opened a software adapter, ${opened.name} (${opened.evidence}), not the predicted ${predicted.name}: it trains slower than the CPU provider; request 'webgpu' by name to use it anyway`
        : `the session opened a software adapter, ${opened.name} (${opened.evidence}): it trains slower than the CPU provider; request 'webgpu' by name to use it anyway`;
    available = available.filter((p) => p !== 'webgpu');
  }
  const choice = available[0] ?? null;
  if (choice === null) return { choice, reason: 'no provider available', refusedWebGpu };
  const withRefusal = (d: AutoDecision): AutoDecision => (refusedWebGpu ? { ...d, refusedWebGpu } : d);
  if (available.includes('webgpu') && available.includes('cuda')) {
    const m = inputs.measurement;
    const adapter = inputs.predicted?.name ?? (opened?.readable ? opened.name : null);
    const applies = m && adapter !== null && m.adapter === adapter && isPositive(m.cudaStepMs) && isPositive(m.webgpuStepMs);
    if (applies && m.cudaStepMs < m.webgpuStepMs) {
      return withRefusal({
        choice: 'cuda',
        reason: `measured on ${m.adapter} (${m.workload}, ${m.steps} steps): CUDA ${fmt(m.cudaStepMs)} ms per ZO step, WebGPU ${fmt(m.webgpuStepMs)} ms`,
      });
    }
    const why = applies
      ? `measured on ${m.adapter} (${m.workload}, ${m.steps} steps): WebGPU ${fmt(m.webgpuStepMs)} ms per ZO step, CUDA ${fmt(m.cudaStepMs)} ms`
      : m && adapter !== null && m.adapter !== adapter
        ? `device-resident, preferred over CUDA (its weights cross the bus every forward); the cached measurement is for another adapter (${m.adapter})`
        : 'device-resident, preferred over CUDA (its weights cross the bus every forward); no measurement on this machine says CUDA is faster';
    return withRefusal({ choice: 'webgpu', reason: why });
  }
  const reasons: Record<ProviderName, string> = {
    webgpu: 'device-resident: weights stay on the device',
    cuda: 'the first GPU provider available (host weights copied to the GPU each forward)',
    dml: 'the first GPU provider available (host weights copied to the GPU each forward)',
    cpu: 'no GPU provider available',
    coreml: 'named',
  };
  return withRefusal({ choice, reason: reasons[choice] });
}

const isPositive = (x: number): boolean => Number.isFinite(x) && x > 0;
const fmt = (ms: number): string => (ms >= 10 ? ms.toFixed(0) : ms.toPrecision(2));

// ---- what the session opened ------------------------------------------------------------------------

const LLVMPIPE_THREAD = /^llvmpipe-\d+$/;

/** Names of this process's threads (Linux); null elsewhere. */
export function threadNames(taskDir = '/proc/self/task'): string[] | null {
  try {
    return readdirSync(taskDir).map((t) => {
      try {
        return readFileSync(join(taskDir, t, 'comm'), 'utf8').trim();
      } catch {
        return ''; // the thread ended meanwhile
      }
    });
  } catch {
    return null;
  }
}

/**
 * What the thread names say about the opened device. Mesa's llvmpipe starts its rasteriser threads
 * ("llvmpipe-N") when a lavapipe logical device is created, not when adapters are enumerated, and
 * onnxruntime keeps one WebGPU device per process: such threads mean the session runs on lavapipe.
 */
export function observationFromThreads(names: readonly string[] | null, platform: NodeJS.Platform = process.platform): AdapterObservation {
  if (names === null || platform !== 'linux') {
    return {
      readable: false,
      note: `the adapter onnxruntime opened cannot be read on ${platform}: neither onnxruntime-node nor Dawn reports it; the survey's prediction is kept`,
    };
  }
  const rasterisers = names.filter((n) => LLVMPIPE_THREAD.test(n)).length;
  return rasterisers > 0
    ? { readable: true, software: true, name: 'llvmpipe (Mesa lavapipe)', evidence: `${rasterisers} llvmpipe rasteriser threads started with the device` }
    : { readable: true, software: false, name: 'not lavapipe', evidence: 'no llvmpipe rasteriser thread in the process after the device opened' };
}

/**
 * Opens onnxruntime's WebGPU device with a one-node session (the same provider options as every WebGPU
 * session here, so the same adapter) and reads what it opened. Throws what session creation throws.
 */
export async function observeOpenedAdapter(): Promise<AdapterObservation> {
  const session = await ort.InferenceSession.create(singleNodeGraph('adapter-probe', 'Add', ['x', 'x'], 1), {
    executionProviders: ['webgpu'],
    logSeverityLevel: 3,
  });
  try {
    return observationFromThreads(threadNames());
  } finally {
    await session.release();
  }
}

// ---- the cached measurement ---------------------------------------------------------------------------

/** The user's cache folder for this product (XDG on Linux, Library/Caches on macOS, LOCALAPPDATA on Windows). */
export function userCacheDir(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): string {
  if (platform === 'win32') return join(env.LOCALAPPDATA || join(homedir(), 'AppData', 'Local'), 'fedkseed');
  if (platform === 'darwin') return join(homedir(), 'Library', 'Caches', 'fedkseed');
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'fedkseed');
}

export const providerSpeedFile = (dir = userCacheDir()): string => join(dir, 'provider-speed.json');

/** The cached measurements, one per adapter; entries that are not well-formed are dropped. */
export function readProviderSpeeds(file = providerSpeedFile()): ProviderSpeed[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return [];
  }
  const list = (parsed as { measurements?: unknown } | null)?.measurements;
  return Array.isArray(list) ? list.filter(isProviderSpeed) : [];
}

export function providerSpeedFor(adapter: string, file = providerSpeedFile()): ProviderSpeed | null {
  return readProviderSpeeds(file).find((m) => m.adapter === adapter) ?? null;
}

/** Records a measurement, replacing the one for the same adapter (written whole, then renamed). */
export function recordProviderSpeed(speed: ProviderSpeed, file = providerSpeedFile()): void {
  const measurements = [...readProviderSpeeds(file).filter((m) => m.adapter !== speed.adapter), speed];
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ measurements }, null, 2) + '\n');
  renameSync(tmp, file);
}

function isProviderSpeed(x: unknown): x is ProviderSpeed {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  return (
    typeof r.adapter === 'string' &&
    typeof r.cudaStepMs === 'number' &&
    typeof r.webgpuStepMs === 'number' &&
    typeof r.steps === 'number' &&
    typeof r.workload === 'string' &&
    typeof r.measuredAt === 'string'
  );
}
