// Builds the federation's LocalTrainer over the engine.
import { EngineLocalTrainer, type EngineTrainerData, type EngineTrainerOptions } from '../client/engine-trainer';
import type { Engine } from '../engine';

export function createEngineTrainer(engine: Engine, data: EngineTrainerData, options: EngineTrainerOptions): EngineLocalTrainer {
  return new EngineLocalTrainer(engine, data, options);
}
