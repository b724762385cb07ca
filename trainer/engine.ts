// One place that assembles the engine: model → training graph → session, weights → ParameterSet
// (resident in WASM memory where they fit), and the tokenizer.
import { availableParallelism } from 'node:os';
import { loadTokenizer, type TextTokenizer } from './data/tokenizer';
import { loadModel, ModelSession, rewriteForTraining, type LoadedModel } from './model';
import { resolveModelPaths } from './paths';
import type { KernelChoice } from './zo/kernels-select';
import { ParameterSet } from './zo/parameters';

export interface EngineOptions {
  /** .onnx file or folder with model.onnx (default: the bundled model). */
  readonly model?: string;
  readonly tokenizer?: string;
  /** Intra-op threads for onnxruntime (default: all cores). */
  readonly threads?: number;
  /** Execution providers to try in order (default ['cpu']). */
  readonly providers?: string[];
  readonly kernel?: KernelChoice;
}

export interface Engine {
  readonly model: LoadedModel;
  readonly params: ParameterSet;
  readonly session: ModelSession;
  readonly tokenizer: TextTokenizer;
  readonly modelPath: string;
  close(): Promise<void>;
}

export async function openEngine(options: EngineOptions = {}): Promise<Engine> {
  const paths = resolveModelPaths(options.model, options.tokenizer);
  const tokenizer = loadTokenizer(paths.tokenizer);
  const model = await loadModel(paths.model);
  // Large models split each perturbation pass over two threads (the session's cores idle meanwhile).
  const params = new ParameterSet(model.weights, { kernel: options.kernel ?? 'auto', parallelPasses: 'auto' });
  // The master copies now live in the ParameterSet; drop the loader's arrays.
  for (const w of model.weights) (w as { data: Float32Array }).data = new Float32Array(0);
  const session = await ModelSession.create(rewriteForTraining(model), {
    intraOpNumThreads: options.threads ?? availableParallelism(),
    executionProviders: options.providers ?? ['cpu'],
  });
  // bindTo, not bindWeights: a split pass hands back new arrays and the session must follow them.
  params.bindTo(session);
  if (tokenizer.vocabSize > (model.io.vocab ?? Infinity)) {
    params.dispose();
    await session.release();
    throw new Error(`tokenizer ${paths.tokenizer} has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${model.io.vocab}`);
  }
  return { model, params, session, tokenizer, modelPath: paths.model, close: async () => {
    params.dispose();
    await session.release();
  } };
}
