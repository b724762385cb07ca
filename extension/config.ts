// Typed view of the extension's settings (contributes.configuration in package.json). Paths may use
// ${workspaceFolder}; relative paths resolve against the first workspace folder.
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import * as vscode from 'vscode';
import { SETTING_DEFAULTS, type SettingKey } from '../contracts/defaults';
import { locateModel } from '../contracts/node/model-location';
import type { CompletionSource, ExecutionProviderSetting, ForwardPrecision, InitializeParams, SamplingSettings } from '../contracts/trainer-rpc';
import type { Generator, PerturbationShape } from '../protocol/messages';

export const CONFIG_SECTION = 'fedkseed';

export interface FedKSeedSettings {
  readonly serverUrl: string;
  readonly engine: InitializeParams;
  readonly data: { readonly path: string | undefined; readonly include: string[]; readonly heldOutFraction: number };
  readonly training: {
    readonly batchSize: number;
    readonly seqLen: number;
    readonly k: number;
    readonly epsilon: number;
    /** Learning rate η (the setting training.learningRate). */
    readonly eta: number;
    /** How z is scaled tensor by tensor (the setting training.shape); also the local federation's. */
    readonly shape: PerturbationShape;
    /** How z is generated (the setting training.generator); also the local federation's. */
    readonly generator: Generator;
    /** Which weights a local run leaves (the setting training.keep). */
    readonly keep: 'best' | 'last';
    readonly steps: number;
    readonly evalEvery: number;
    readonly federationSeed: number;
  };
  readonly localServer: {
    readonly port: number;
    readonly rounds: number;
    readonly clientsPerRound: number;
    readonly tau: number;
    readonly sampling: 'uniform' | 'pro';
    readonly deadlineSeconds: number;
  };
  readonly completions: {
    readonly enabled: boolean;
    readonly source: CompletionSource;
    readonly sampling: SamplingSettings;
    readonly maxTokens: number;
    readonly stop: 'line' | 'block';
  };
}

/** Settings whose change needs a new engine (the trainer process re-initialises). */
export const engineSettingKeys = [
  'model.path',
  'model.variant',
  'model.tokenizerPath',
  'engine.executionProvider',
  'engine.threads',
  'engine.kernel',
  'engine.maxMemory',
  'engine.forwardPrecision',
];

function workspaceRoot(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

/** Expands ${workspaceFolder} and resolves relative paths; empty means "not set". */
export function resolveSettingPath(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  if (!trimmed) return undefined;
  const root = workspaceRoot();
  const expanded = root ? trimmed.replace(/\$\{workspaceFolder\}/g, root) : trimmed;
  if (isAbsolute(expanded) || !root) return expanded;
  return join(root, expanded);
}

const HF_ID = /^[\w.-]+\/[\w.-]+$/;

/**
 * The model setting: a path (resolved as resolveSettingPath does) or an org/name id of the Hugging Face
 * cache, kept as it is when no such path exists in the workspace. With a variant the file it names is
 * resolved here (contracts/model-location.ts), so the trainer is given the file; a variant the folder
 * does not have is left to the trainer's error on the folder.
 */
export function resolveModelSetting(value: string | undefined, variant: string | undefined): string | undefined {
  const trimmed = value?.trim();
  if (!trimmed) return undefined;
  const asPath = resolveSettingPath(trimmed) as string;
  const spec = HF_ID.test(trimmed) && !existsSync(asPath) ? trimmed : asPath;
  if (!variant?.trim()) return spec;
  try {
    return locateModel(spec, { variant: variant.trim() }).model;
  } catch {
    return spec;
  }
}

export function readSettings(): FedKSeedSettings {
  const c = vscode.workspace.getConfiguration(CONFIG_SECTION);
  // A setting's value, or its default (contracts/defaults.ts, which package.json's defaults equal).
  const get = <T>(key: SettingKey): T => c.get<T>(key, SETTING_DEFAULTS[key] as T);
  return {
    serverUrl: get('server.url'),
    engine: {
      model: resolveModelSetting(get('model.path'), get('model.variant')),
      tokenizer: resolveSettingPath(get('model.tokenizerPath')),
      provider: get<ExecutionProviderSetting>('engine.executionProvider'),
      threads: get('engine.threads'),
      kernel: get<'auto' | 'wasm-simd' | 'js'>('engine.kernel'),
      maxMemory: get<string>('engine.maxMemory'),
      forwardPrecision: get<ForwardPrecision>('engine.forwardPrecision'),
    },
    data: {
      path: resolveSettingPath(get('data.path')) ?? workspaceRoot(),
      include: get<string[]>('data.include'),
      heldOutFraction: get('data.heldOutFraction'),
    },
    training: {
      batchSize: get('training.batchSize'),
      seqLen: get('training.sequenceLength'),
      k: get('training.k'),
      epsilon: get('training.epsilon'),
      eta: get('training.learningRate'),
      shape: get('training.shape'),
      generator: get('training.generator'),
      keep: get('training.keep'),
      steps: get('training.steps'),
      evalEvery: get('training.evalEvery'),
      federationSeed: get('training.federationSeed'),
    },
    localServer: {
      port: get('localServer.port'),
      rounds: get('localServer.rounds'),
      clientsPerRound: get('localServer.clientsPerRound'),
      tau: get('localServer.tau'),
      sampling: get<'uniform' | 'pro'>('localServer.sampling'),
      deadlineSeconds: get('localServer.deadlineSeconds'),
    },
    completions: {
      enabled: get('completions.enabled'),
      source: get<CompletionSource>('completions.source'),
      // A fixed seed: the same prefix gives the same suggestion until the weights change.
      sampling:
        get<string>('completions.sampling') === 'sample'
          ? { mode: 'sample', temperature: get('completions.temperature'), topP: get('completions.topP'), seed: 0 }
          : { mode: 'greedy' },
      maxTokens: get('completions.maxTokens'),
      stop: get<'line' | 'block'>('completions.stop'),
    },
  };
}

export function affectsEngine(event: vscode.ConfigurationChangeEvent): boolean {
  return engineSettingKeys.some((key) => event.affectsConfiguration(`${CONFIG_SECTION}.${key}`));
}
