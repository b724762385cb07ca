// Turns the extension's engine settings into the engine's options: "auto" picks the best execution
// provider this installation has, always with the CPU as the fallback.
import { listSupportedBackends } from 'onnxruntime-node';
import type { EngineOptions } from '../engine';
import type { ExecutionProviderSetting, InitializeParams } from './payloads';

export function providerList(setting: ExecutionProviderSetting): string[] {
  if (setting === 'cpu') return ['cpu'];
  if (setting !== 'auto') return [setting, 'cpu'];
  // CUDA only when its binaries were installed (ONNXRUNTIME_NODE_INSTALL=cuda12); WebGPU stays opt-in.
  const installed = new Set(listSupportedBackends().filter((b) => b.bundled).map((b) => b.name));
  return installed.has('cuda') ? ['cuda', 'cpu'] : ['cpu'];
}

export function engineOptions(params: InitializeParams): EngineOptions {
  return {
    model: params.model || undefined,
    tokenizer: params.tokenizer || undefined,
    threads: params.threads > 0 ? params.threads : undefined,
    providers: providerList(params.provider),
    kernel: params.kernel,
  };
}
