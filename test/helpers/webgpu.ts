// Whether a WebGPU adapter can be created here. On a machine without a GPU, Mesa's software Vulkan driver
// (lavapipe, Debian bookworm-backports' mesa-vulkan-drivers) provides one, so CI runs the WebGPU tests for
// correctness; where none can be created they are skipped with the reason printed.
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import * as ort from 'onnxruntime-node';
import { conciseOrtError } from '../../trainer/device/providers';
import { singleNodeGraph } from '../../trainer/model/onnx';
import { errorMessage } from '../../protocol/errors';
import { packageRoot } from '../../trainer/paths';

let probe: Promise<string | null> | null = null;

/** Vulkan wants a runtime directory; give the process one if it has none. */
export function ensureRuntimeDir(): void {
  if (process.env.XDG_RUNTIME_DIR) return;
  const dir = join(tmpdir(), `fedkseed-xdg-${process.pid}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  process.env.XDG_RUNTIME_DIR = dir;
}

/** null when a WebGPU session can be created, else why not (for t.skip). */
export function webgpuSkipReason(): Promise<string | null> {
  probe ??= (async () => {
    ensureRuntimeDir();
    if (!ort.listSupportedBackends().some((b) => b.name === 'webgpu')) return 'this onnxruntime-node build has no WebGPU provider';
    const bytes = singleNodeGraph('add', 'Add', ['x', 'x'], 2);
    try {
      const s = await ort.InferenceSession.create(bytes, { executionProviders: ['webgpu'], logSeverityLevel: 3 });
      await s.release();
      return null;
    } catch (e) {
      return `no WebGPU adapter can be created here (${conciseOrtError(errorMessage(e))}); install a GPU's Vulkan driver, or Mesa's software one: apt-get install -t bookworm-backports mesa-vulkan-drivers (docs/gpu.md)`;
    }
  })();
  return probe;
}

/** Skips `t` (printing why) where no WebGPU adapter can be created; true when it did. */
export async function skipWithoutWebGpu(t: TestContext): Promise<boolean> {
  const reason = await webgpuSkipReason();
  if (reason) {
    t.diagnostic(`skipped: ${reason}`);
    t.skip(reason);
  }
  return reason !== null;
}

/** The exported-model fixtures this checkout has (Optimum, Transformers.js, a folded Llama), as paths. */
export function exportedModelFixtures(): string[] {
  const fixtures = join(packageRoot(), 'test', 'fixtures', 'models');
  return [
    'gpt2-no-past/model.onnx',
    'llama-folded/model.onnx',
    'optimum-gpt2/decoder_model_merged.onnx',
    'transformersjs-gpt2/onnx/model_fp16.onnx',
    'transformersjs-gpt2/onnx/model_quantized.onnx',
    'transformersjs-gpt2/onnx/model_q4.onnx',
  ]
    .map((f) => join(fixtures, f))
    .filter((f) => existsSync(f));
}
