// The base model a federation server holds every client to: its identity (SHA-256) and its size.
import { loadModel } from '../trainer/model/load';
import { resolveModelPaths } from '../trainer/paths';

export interface BaseModel {
  /** SHA-256 of the model (hex). */
  readonly identity: string;
  readonly parameters: number;
}

/** An .onnx file or a folder holding model.onnx; undefined: the bundled model. */
export async function readBaseModel(path?: string): Promise<BaseModel> {
  const model = await loadModel(resolveModelPaths(path).model);
  return { identity: model.identity, parameters: model.weights.reduce((n, w) => n + w.data.length, 0) };
}
