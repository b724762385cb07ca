// The name a person knows a model by, for every place the extension names it (sidebar, status bar,
// dashboard, run history, completions): its folder's ("tiny-code-lm", "Qwen2.5-0.5B"), or its Hugging
// Face repository ("Xenova/gpt2"), never the file name "model.onnx" that every export shares.
// Pure path arithmetic (no VS Code, nothing read from disk), so it is unit-tested on its own.
import { basename, dirname } from 'node:path';

/** Folders that hold a model's files but do not name it. */
const LAYOUT_FOLDERS = new Set(['onnx', 'model', 'models', 'export', 'exports', 'output', 'fp32', 'fp16']);

export function modelDisplayName(spec: string): string {
  const path = spec.replace(/[\\/]+$/, '');
  if (path === '') return spec;
  // A Hugging Face cache folder: models--org--name/snapshots/<revision>/… names the repository.
  const cached = /(?:^|[\\/])models--([^\\/]+)/.exec(path);
  if (cached) return cached[1]!.replace('--', '/');
  // An id ("org/name") or a folder is its own name.
  if (!/\.onnx$/i.test(path)) return /^[^\\/.][^\\/]*\/[^\\/]+$/.test(path) ? path : basename(path);
  let folder = dirname(path);
  // A transformers.js repository keeps its files in onnx/: the repository is the model.
  while (LAYOUT_FOLDERS.has(basename(folder).toLowerCase()) && dirname(folder) !== folder) folder = dirname(folder);
  const name = basename(folder);
  return name === '' || name === '.' ? basename(path) : name;
}
