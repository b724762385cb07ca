// The base model a federation server holds every client to: its identity (SHA-256) and its size.
import { locateModel } from '../contracts/node/model-location';
import { loadModel } from '../trainer/model/load';
import type { Selection } from '../trainer/model/trainable';
import { bundledModelDir } from '../trainer/paths';

export interface BaseModel {
  /** SHA-256 of the model (hex). */
  readonly identity: string;
  readonly parameters: number;
}

/**
 * A model argument (a file, a model folder or an org/name id in the Hugging Face cache; undefined: the
 * bundled model) with the variant and trainable selection the clients use: both are part of what the
 * identity covers. No tokenizer is needed here.
 */
export async function readBaseModel(path?: string, options: { variant?: string; select?: Selection } = {}): Promise<BaseModel> {
  const model = await loadModel(locateModel(path ?? bundledModelDir(), { variant: options.variant }).model, { select: options.select });
  return { identity: model.identity, parameters: model.weights.reduce((n, w) => n + w.data.length, 0) };
}
