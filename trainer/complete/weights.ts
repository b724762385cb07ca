// The weights a completion reads: a copy of the engine's working weights taken while they are at rest
// (no perturbation in flight), or the base model's own. A copy, not the live arrays: training goes on
// perturbing those while a completion decodes.
import type { Engine } from '../engine';
import { loadModel } from '../model';
import type { ParameterTensor } from '../zo/parameters';

export type WeightMap = ReadonlyMap<string, Float32Array>;

/** Splits a span (weights by global index) into one array per tensor, as views of one copy. */
export function weightsFromSpan(span: Float32Array, tensors: readonly ParameterTensor[]): WeightMap {
  const copy = new Float32Array(span.length);
  copy.set(span);
  return new Map(tensors.map((t) => [t.name, copy.subarray(t.offset, t.offset + t.size)]));
}

/**
 * A copy of the engine's working weights; call it only while they are at rest. On the device engine the
 * working weights are the device's: they are read back.
 */
export async function snapshotWeights(engine: Engine): Promise<WeightMap> {
  const span = engine.device ? await engine.device.read() : engine.params.spanData();
  return weightsFromSpan(span, engine.params.tensors);
}

/** The base model's weights, read from its file. */
export async function baseWeights(engine: Engine): Promise<WeightMap> {
  const model = await loadModel(engine.located.model);
  return new Map(model.weights.map((w) => [w.name, w.data]));
}
