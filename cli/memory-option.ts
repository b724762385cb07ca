// --max-memory: the training process's memory budget (trainer/zo/memory-plan.ts), for train, client and
// simulate (each client process and the evaluator get it).
import { type Command, InvalidArgumentError } from 'commander';
import type { EngineOptions } from '../trainer/engine';
import { parseMemorySize } from '../trainer/zo/memory-plan';
import { errorMessage } from '../protocol/errors';

export interface MemoryCliOptions {
  maxMemory?: number;
}

export function memorySize(value: string): number {
  try {
    return parseMemorySize(value);
  } catch (e) {
    throw new InvalidArgumentError(errorMessage(e));
  }
}

export function addMemoryOption(cmd: Command, scope = 'of the training process'): Command {
  return cmd.option(
    '--max-memory <size>',
    `memory budget ${scope}, e.g. 12G or 7500M (K/M/G/T are powers of 1024; default: 80% of physical memory): decides the z store and whether S is held, and stops before loading when the model cannot fit, with the figure it needs`,
    memorySize,
  );
}

/** The engine options the budget sets: the budget, and the batches onnxruntime's activations are planned for. */
export function memoryEngineOptions(o: MemoryCliOptions & { batchSize: number; seqLen: number }): Pick<EngineOptions, 'maxMemory' | 'workload'> {
  return { ...(o.maxMemory !== undefined ? { maxMemory: o.maxMemory } : {}), workload: { batch: o.batchSize, seq: o.seqLen } };
}
