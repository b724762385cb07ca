// Where the product's own files are, whether running from source (tsx) or from dist/ bundles.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

let cachedRoot: string | undefined;

/** The package root: the nearest folder above this module whose package.json is named "fedkseed". */
export function packageRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = __dirname;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'fedkseed') return (cachedRoot = dir);
      } catch {
        // not ours; keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the fedkseed package root above ${__dirname}`);
    dir = parent;
  }
}

/** The model that ships with the product. */
export function bundledModelDir(): string {
  return join(packageRoot(), 'models', 'tiny-code-lm');
}

export interface ModelPaths {
  readonly model: string;
  readonly tokenizer: string;
}

/**
 * A model argument may name an .onnx file or a folder holding model.onnx; the tokenizer defaults to
 * tokenizer.json beside the model.
 */
export function resolveModelPaths(model?: string, tokenizer?: string): ModelPaths {
  let modelPath = resolve(model ?? bundledModelDir());
  if (existsSync(modelPath) && statSync(modelPath).isDirectory()) modelPath = join(modelPath, 'model.onnx');
  if (!existsSync(modelPath)) throw new Error(`model file not found: ${modelPath}`);
  const tokenizerPath = resolve(tokenizer ?? join(dirname(modelPath), 'tokenizer.json'));
  if (!existsSync(tokenizerPath)) {
    throw new Error(`tokenizer not found: ${tokenizerPath} (pass --tokenizer with the model's tokenizer.json)`);
  }
  return { model: modelPath, tokenizer: tokenizerPath };
}
