// Execution-provider selection: resolves a request ('auto', one name, a comma list or an array) against
// what this onnxruntime-node build ships and this platform supports, tries the candidates in order and
// reports what is in use and, for every provider not used, why.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { chooseWebGpuAdapter, describeAdapterChoice, surveyWebGpuAdapters, type AdapterChoice, type WebGpuAdapter, type WebGpuSurvey } from './adapters';
import { decideAuto, observeOpenedAdapter, providerSpeedFor, type AdapterObservation, type ProviderSpeed } from './auto-choice';
import { errorMessage } from '../../protocol/errors';

import { PROVIDER_NAMES, type ProviderName } from './provider-names';

export { PROVIDER_NAMES, type ProviderName };

/** 'auto', a provider name, a comma-separated list of them, or an array (entries may be comma lists or 'auto'). */
export type ProviderRequest = string | readonly string[];

/**
 * What 'auto' considers, in its default order (decideAuto in auto-choice.ts may put CUDA before WebGPU on a
 * measurement). CoreML is left out: it partitions a training graph into many CPU/ANE islands and is
 * rarely faster than the CPU for it, so it runs only when asked for by name. WebGPU is taken by 'auto'
 * only on a hardware adapter, predicted by the survey (adapters.ts) and confirmed on the device the
 * session opened; naming 'webgpu' uses whatever adapter there is.
 */
export const AUTO_ORDER: readonly ProviderName[] = ['webgpu', 'cuda', 'dml', 'cpu'];

export type ProviderOutcome = 'used' | 'unavailable' | 'failed' | 'not-tried';

export interface ProviderAttempt {
  readonly name: ProviderName;
  readonly outcome: ProviderOutcome;
  /** Why it was not used (absent for the provider in use). */
  readonly reason?: string;
}

export interface ProviderReport {
  /** The request as given, normalised to a comma list. */
  readonly requested: string;
  readonly used: ProviderName;
  /** Every provider considered, in the order considered, the one used included. */
  readonly attempts: readonly ProviderAttempt[];
  /** With WebGPU in use: the adapter it runs on, as surveyed (null when it could not be named). */
  readonly adapter?: WebGpuAdapter | null;
  /** With WebGPU in use: the other adapters and why each is not the one used; a warning for a software adapter. */
  readonly adapterNote?: string;
  /** With WebGPU tried: what the process showed about the adapter its session opened. */
  readonly adapterObserved?: AdapterObservation;
  /** For a plain 'auto' request: why the provider in use was chosen (decideAuto). */
  readonly choiceReason?: string;
}

/** What selection needs to know about the installation; injectable so tests can describe other machines. */
export interface ProviderEnvironment {
  readonly platform: NodeJS.Platform;
  readonly arch: string;
  /** onnxruntime-node's listSupportedBackends(): `bundled: false` means shipped separately (CUDA). */
  readonly backends: readonly { readonly name: string; readonly bundled: boolean }[];
  /** Whether a provider library that is installed separately is present next to the binding. */
  readonly hasProviderLibrary: (file: string) => boolean;
  /** The WebGPU adapters (absent: not surveyed, nothing is ruled out for WebGPU). */
  readonly webgpuAdapters?: () => WebGpuSurvey;
  /** Opens the WebGPU device and reports its adapter (absent: not observed, the survey's prediction is kept). */
  readonly observeWebGpuAdapter?: () => Promise<AdapterObservation>;
  /** The cached CUDA-vs-WebGPU measurement on this adapter, if any. */
  readonly providerSpeed?: (adapter: string) => ProviderSpeed | null;
}

export const CUDA_INSTALL_HINT = 'ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install';

const PLATFORM_OF: Partial<Record<ProviderName, { platform: NodeJS.Platform; label: string }>> = {
  dml: { platform: 'win32', label: 'DirectML runs on Windows only' },
  coreml: { platform: 'darwin', label: 'CoreML runs on macOS only' },
};

/** The installation this process runs on. */
export function currentProviderEnvironment(): ProviderEnvironment {
  const bindingDir = onnxruntimeBinaryDir();
  return {
    platform: process.platform,
    arch: process.arch,
    backends: ort.listSupportedBackends(),
    hasProviderLibrary: (file) => bindingDir !== null && existsSync(join(bindingDir, file)),
    webgpuAdapters: cachedSurvey,
    observeWebGpuAdapter: cachedObservation,
    providerSpeed: (adapter) => providerSpeedFor(adapter),
  };
}

let observation: Promise<AdapterObservation> | null = null;
/** onnxruntime keeps one WebGPU device per process: observed once (a failure is retried next time). */
function cachedObservation(): Promise<AdapterObservation> {
  observation ??= observeOpenedAdapter().catch((e: unknown) => {
    observation = null;
    throw e;
  });
  return observation;
}

let survey: WebGpuSurvey | null = null;
/** The adapters do not change while the process runs: surveyed once. */
function cachedSurvey(): WebGpuSurvey {
  survey ??= surveyWebGpuAdapters();
  return survey;
}

function onnxruntimeBinaryDir(): string | null {
  try {
    const packageDir = dirname(require.resolve('onnxruntime-node/package.json'));
    return join(packageDir, 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return null;
  }
}

export class ProviderRequestError extends Error {}

/** Provider names of a request in order, duplicates removed, 'auto' expanded. Throws on an unknown name. */
export function parseProviderRequest(request: ProviderRequest): { names: ProviderName[]; auto: boolean; explicit: Set<ProviderName>; text: string } {
  const parts = (typeof request === 'string' ? [request] : [...request])
    .flatMap((entry) => entry.split(','))
    .map((p) => p.trim().toLowerCase())
    .filter((p) => p.length > 0);
  if (parts.length === 0) throw new ProviderRequestError('no execution provider requested');
  const names: ProviderName[] = [];
  const explicit = new Set<ProviderName>();
  let auto = false;
  for (const part of parts) {
    const expanded = part === 'auto' ? AUTO_ORDER : [part];
    if (part === 'auto') auto = true;
    for (const name of expanded) {
      if (!isProviderName(name)) {
        throw new ProviderRequestError(`unknown execution provider '${name}' (known: auto, ${PROVIDER_NAMES.join(', ')})`);
      }
      if (part !== 'auto') explicit.add(name);
      if (!names.includes(name)) names.push(name);
    }
  }
  return { names, auto, explicit, text: parts.join(',') };
}

function isProviderName(name: string): name is ProviderName {
  return (PROVIDER_NAMES as readonly string[]).includes(name);
}

/**
 * Why a provider cannot be tried here, or null when a session may be attempted with it. `viaAuto`: the
 * provider came from 'auto', which also rules out WebGPU on a software adapter or with no adapter.
 */
export function unavailableReason(name: ProviderName, env: ProviderEnvironment, viaAuto = false): string | null {
  if (name === 'cpu') return null;
  const platformOnly = PLATFORM_OF[name];
  if (platformOnly && platformOnly.platform !== env.platform) {
    return `not available on this platform (${env.platform}/${env.arch}): ${platformOnly.label}`;
  }
  const backend = env.backends.find((b) => b.name === name);
  if (!backend) {
    const shipped = env.backends.map((b) => b.name).join(', ');
    return `not available on this platform: onnxruntime-node for ${env.platform}/${env.arch} supports ${shipped}`;
  }
  if (name === 'cuda' && !backend.bundled && !env.hasProviderLibrary(cudaLibraryFile(env.platform))) {
    return `CUDA binaries not installed: run ${CUDA_INSTALL_HINT} (needs CUDA 12 and cuDNN 9 on the library path)`;
  }
  if (name === 'webgpu' && viaAuto && env.webgpuAdapters) {
    const survey = env.webgpuAdapters();
    if (survey.source === 'unknown') return null;
    const { chosen } = chooseWebGpuAdapter(survey);
    if (!chosen) return `no WebGPU adapter (${survey.note ?? `none listed by ${survey.source}`})`;
    if (chosen.software) {
      return `only a software adapter: ${chosen.name}${chosen.driver ? ` (driver ${chosen.driver})` : ''} renders on the CPU and trains slower than the CPU provider; request 'webgpu' by name to use it anyway`;
    }
  }
  return null;
}

/** The adapter WebGPU runs on here and what was passed over (null without a survey). */
export function webgpuAdapterChoice(env: ProviderEnvironment): AdapterChoice | null {
  const survey = env.webgpuAdapters?.();
  return survey && survey.source !== 'unknown' ? chooseWebGpuAdapter(survey) : null;
}

function cudaLibraryFile(platform: NodeJS.Platform): string {
  return platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
}

/** The candidates to try in order, and the providers ruled out before any session is created. */
export function planProviders(
  request: ProviderRequest,
  env: ProviderEnvironment = currentProviderEnvironment(),
): {
  candidates: ProviderName[];
  ruledOut: ProviderAttempt[];
  text: string;
} {
  const { names, explicit, text } = parseProviderRequest(request);
  const candidates: ProviderName[] = [];
  const ruledOut: ProviderAttempt[] = [];
  for (const name of names) {
    const reason = unavailableReason(name, env, !explicit.has(name));
    if (reason === null) candidates.push(name);
    else ruledOut.push({ name, outcome: 'unavailable', reason });
  }
  return { candidates, ruledOut, text };
}

/** onnxruntime's messages carry a source location and an assertion; keep the sentence a user can act on. */
export function conciseOrtError(message: string): string {
  const firstLines = message
    .trim()
    .split('\n')
    .filter((l) => l.trim().length > 0);
  let text = firstLines[0] ?? message.trim();
  const assertion = / was false\. (.*)$/.exec(text);
  if (assertion) text = assertion[1];
  text = text.replace(/^\/\S+:\d+ \S+ /, '');
  if (/Failed to load shared library/i.test(text)) text += ' (the provider library or one it depends on is missing)';
  return text.trim();
}

export class NoProviderError extends Error {
  constructor(readonly report: Omit<ProviderReport, 'used'>) {
    super(`no execution provider could be used for '${report.requested}': ${describeAttempts(report.attempts)}`);
  }
}

export interface ProviderSession<T> {
  readonly value: T;
  readonly report: ProviderReport;
}

/**
 * Creates something (a session) with each candidate in turn until one succeeds. `create` receives the
 * provider name; its failure becomes that provider's reason and the next is tried.
 */
export async function createWithProviders<T>(
  request: ProviderRequest,
  create: (provider: ProviderName) => Promise<T>,
  env: ProviderEnvironment = currentProviderEnvironment(),
): Promise<ProviderSession<T>> {
  const parsed = parseProviderRequest(request);
  if (parsed.auto && parsed.explicit.size === 0) return createAuto(request, create, env);
  const { candidates, ruledOut, text } = planProviders(request, env);
  const attempts: ProviderAttempt[] = [];
  const order = parsed.names;
  const record = (a: ProviderAttempt): void => void attempts.push(a);
  let used: { name: ProviderName; value: T } | null = null;
  for (const name of order) {
    const excluded = ruledOut.find((r) => r.name === name);
    if (excluded) {
      record(excluded);
      continue;
    }
    if (used) {
      record({ name, outcome: 'not-tried', reason: `${used.name} was used first` });
      continue;
    }
    if (!candidates.includes(name)) continue;
    try {
      used = { name, value: await create(name) };
      record({ name, outcome: 'used' });
    } catch (e) {
      record({ name, outcome: 'failed', reason: `session creation failed: ${conciseOrtError(errorMessage(e))}` });
    }
  }
  if (!used) throw new NoProviderError({ requested: text, attempts });
  if (used.name !== 'webgpu') return { value: used.value, report: { requested: text, used: used.name, attempts } };
  return { value: used.value, report: { requested: text, used: used.name, attempts, ...(await webgpuAdapterReport(env)) } };
}

/** The adapter part of a report with WebGPU in use: predicted, and what the opened device showed. */
async function webgpuAdapterReport(
  env: ProviderEnvironment,
  known?: AdapterObservation,
): Promise<Pick<ProviderReport, 'adapter' | 'adapterNote' | 'adapterObserved'>> {
  const choice = webgpuAdapterChoice(env);
  let observed = known;
  if (!observed && env.observeWebGpuAdapter) {
    try {
      observed = await env.observeWebGpuAdapter();
    } catch {
      observed = undefined; // the session in use opened a device; the probe's failure only leaves it unconfirmed
    }
  }
  const software = (observed?.readable ? observed.software : choice?.chosen?.software)
    ? ' — a software adapter: correct results, but slower than the CPU provider'
    : '';
  const predicted = choice ? describeAdapterChoice(choice) : 'adapter not identified on this platform';
  const confirmation = !observed
    ? ''
    : observed.readable
      ? `; opened: ${observed.software ? observed.name : 'a hardware adapter'} (${observed.evidence})`
      : `; not confirmed: ${observed.note}`;
  return { adapter: choice?.chosen ?? null, adapterNote: predicted + confirmation + software, adapterObserved: observed };
}

/**
 * A plain 'auto' request: the providers that are not ruled out are chosen by decideAuto, which sees the
 * survey's adapter, what the WebGPU device actually opened (observed before WebGPU is used) and the cached
 * measurement of CUDA against WebGPU on this adapter. A provider whose session fails is dropped and the
 * rule asked again.
 */
async function createAuto<T>(request: ProviderRequest, create: (provider: ProviderName) => Promise<T>, env: ProviderEnvironment): Promise<ProviderSession<T>> {
  const { candidates, ruledOut, text } = planProviders(request, env);
  const attempts: ProviderAttempt[] = [...ruledOut];
  let remaining = [...candidates];
  const drop = (name: ProviderName, attempt: ProviderAttempt): void => {
    attempts.push(attempt);
    remaining = remaining.filter((p) => p !== name);
  };
  const predicted = remaining.includes('webgpu') ? (webgpuAdapterChoice(env)?.chosen ?? null) : null;
  const measurement = predicted && env.providerSpeed ? env.providerSpeed(predicted.name) : null;
  let opened: AdapterObservation | undefined;
  for (;;) {
    let decision = decideAuto({ available: remaining, predicted, opened, measurement });
    if (decision.choice === 'webgpu' && opened === undefined && env.observeWebGpuAdapter) {
      try {
        opened = await env.observeWebGpuAdapter();
      } catch (e) {
        drop('webgpu', { name: 'webgpu', outcome: 'failed', reason: `session creation failed: ${conciseOrtError(errorMessage(e))}` });
        continue;
      }
      decision = decideAuto({ available: remaining, predicted, opened, measurement });
    }
    if (decision.refusedWebGpu && remaining.includes('webgpu')) drop('webgpu', { name: 'webgpu', outcome: 'unavailable', reason: decision.refusedWebGpu });
    const name = decision.choice;
    if (name === null) break;
    let value: T;
    try {
      value = await create(name);
    } catch (e) {
      drop(name, { name, outcome: 'failed', reason: `session creation failed: ${conciseOrtError(errorMessage(e))}` });
      continue;
    }
    attempts.push({ name, outcome: 'used' });
    for (const other of remaining) if (other !== name) attempts.push({ name: other, outcome: 'not-tried', reason: `${name} chosen first: ${decision.reason}` });
    const report: ProviderReport = { requested: text, used: name, attempts, choiceReason: decision.reason };
    return { value, report: name === 'webgpu' ? { ...report, ...(await webgpuAdapterReport(env, opened)) } : report };
  }
  throw new NoProviderError({ requested: text, attempts });
}

/** One line per provider not used, e.g. "cuda: CUDA binaries not installed: …". */
export function describeAttempts(attempts: readonly ProviderAttempt[]): string {
  return attempts
    .filter((a) => a.outcome !== 'used')
    .map((a) => `${a.name}: ${a.reason ?? a.outcome}`)
    .join('; ');
}

/**
 * "webgpu on NVIDIA H200 (discrete) (cuda: CUDA binaries not installed: …)" — what is in use, on which
 * adapter, and why the earlier choices are not.
 */
export function describeReport(report: ProviderReport): string {
  const skipped = describeAttempts(report.attempts.filter((a) => a.outcome !== 'not-tried'));
  const on = report.used === 'webgpu' && report.adapterNote ? `webgpu on ${report.adapterNote}` : report.used;
  const used = report.choiceReason ? `${on} [${report.choiceReason}]` : on;
  return skipped ? `${used} (${skipped})` : used;
}
