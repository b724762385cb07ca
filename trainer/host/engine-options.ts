// Turns the extension's engine settings into the engine's options. Provider selection ("auto" included,
// always with the CPU as the fallback) belongs to the engine's device layer.
import type { EngineOptions } from '../engine';
import type { InitializeParams } from '../../contracts/trainer-payloads';
import { parseMemorySize } from '../zo/memory-plan';
import { errorMessage } from '../../protocol/errors';

export function engineOptions(params: InitializeParams): EngineOptions {
  return {
    model: params.model || undefined,
    tokenizer: params.tokenizer || undefined,
    threads: params.threads > 0 ? params.threads : undefined,
    // A named device falls back to the CPU (the setting's description promises it); 'auto' ends on the CPU.
    providers: params.provider === 'cpu' || params.provider === 'auto' ? [params.provider] : [params.provider, 'cpu'],
    kernel: params.kernel,
    forwardPrecision: params.forwardPrecision,
    ...(params.maxMemory?.trim() ? { maxMemory: memorySetting(params.maxMemory) } : {}),
  };
}

function memorySetting(value: string): number {
  try {
    return parseMemorySize(value);
  } catch (e) {
    throw new Error(`fedkseed.engine.maxMemory: ${errorMessage(e)}`, { cause: e });
  }
}
