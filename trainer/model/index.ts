// Public surface of the model layer: load, rewrite for training, run, export, build.
export { ModelError } from './errors';
export { loadModel, parseModel, type FloatWeight, type LoadedModel, type LoadOptions, type WeightSpec } from './load';
export type { CausalLmIo, IndexType, NamedIndexInput } from './validate';
export { rewriteForTraining, IGNORE_INDEX, TRAINING_NAMES, type TrainingGraph } from './rewrite';
export { nextTokenLabels } from './labels';
export { exportModel, EXTERNAL_DATA_THRESHOLD, type ExportOptions, type ExportResult } from './export';
export { buildGpt2, gpt2Bytes, gpt2ParamCount, writeGpt2, GPT2_PRESETS, type Gpt2Config } from './gpt2-builder';
export type { FloatStorage } from './tensor-data';
