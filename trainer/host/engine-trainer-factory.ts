// Builds the federation's LocalTrainer over the engine.
import type { LocalTrainer } from '../client';
import type { Example } from '../data/examples';
import type { Engine } from '../engine';

export interface EngineTrainerOptions {
  readonly batchSize: number;
  readonly seqLen: number;
  readonly clientSeed: number;
  readonly heldOutExamples: number;
}

export function createEngineTrainer(_engine: Engine, _data: { train: Example[]; heldOut: Example[] }, _options: EngineTrainerOptions): LocalTrainer {
  throw new Error('joining a federation is not available in this build yet');
}
