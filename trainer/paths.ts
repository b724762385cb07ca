// Where the product's own files are, whether running from source (tsx) or from dist/ bundles.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { locateModel } from '../contracts/node/model-location';

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
 * A model argument may name an .onnx file, a folder of one of the layouts locateModel reads, or an
 * org/name id in the Hugging Face cache (default: the bundled model); the tokenizer defaults to the one
 * the layout keeps. Throws when there is no tokenizer.
 */
export function resolveModelPaths(model?: string, tokenizer?: string, variant?: string): ModelPaths {
  const located = locateModel(model ?? bundledModelDir(), { tokenizer, variant });
  if (!located.tokenizer) {
    throw new Error(`tokenizer not found for ${located.model} (looked beside it and at its layout's root; pass --tokenizer with the model's tokenizer.json)`);
  }
  return { model: located.model, tokenizer: located.tokenizer };
}
