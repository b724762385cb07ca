// The committed model fixtures (test/fixtures/models/, written by scripts/fixtures/make_models.py):
// tiny causal LMs in every layout the engine reads, with losses and greedy tokens computed in torch.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nextTokenLabels } from '../../trainer/model/labels';
import type { FloatWeight, LoadedModel } from '../../trainer/model/load';
import { ModelSession, type TokenBatch } from '../../trainer/device/session';

export const FIXTURES = join('test', 'fixtures', 'models');

export interface FixtureReference {
  files: string[];
  loss_sum: number;
  tokens: number;
  loss: number;
  parameters: number;
  greedy: number[][];
  quantized?: string[];
}

interface ReferenceFile {
  batch: { input_ids: number[][]; attention_mask: number[][] };
  generation: { prompts: number[][]; max_new_tokens: number; eos: number };
  models: Record<string, FixtureReference>;
}

export const reference: ReferenceFile = JSON.parse(readFileSync(join(FIXTURES, 'reference.json'), 'utf8')) as ReferenceFile;

export function fixturePath(key: string): string {
  return join(FIXTURES, reference.models[key].files[0]);
}

/** The reference token batch (right-padded) with its next-token labels. */
export function referenceBatch(): TokenBatch {
  const ids = reference.batch.input_ids;
  const batch = ids.length;
  const seq = ids[0].length;
  const inputIds = BigInt64Array.from(ids.flat(), BigInt);
  const attentionMask = BigInt64Array.from(reference.batch.attention_mask.flat(), BigInt);
  return { inputIds, attentionMask, labels: nextTokenLabels(inputIds, attentionMask, batch, seq), batch, seq };
}

export function weightArrays(weights: FloatWeight[]): Map<string, Float32Array> {
  return new Map(weights.map((w) => [w.name, w.data]));
}

/** Mean loss of the reference batch under `weights` (default: the model's own). */
export async function fixtureLoss(
  model: LoadedModel,
  weights: ReadonlyMap<string, Float32Array> = weightArrays(model.weights),
): Promise<{ loss: number; tokens: number }> {
  const session = await ModelSession.create(model, { intraOpNumThreads: 1 });
  try {
    session.bindWeights(weights);
    const r = await session.lossSum(referenceBatch());
    return { loss: r.lossSum / r.tokens, tokens: r.tokens };
  } finally {
    await session.release();
  }
}

export function parameterCount(model: LoadedModel): number {
  return model.weights.reduce((n, w) => n + w.data.length, 0);
}
