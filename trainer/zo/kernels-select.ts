// Chooses the kernel implementation: WebAssembly SIMD where the engine validates it, else pure JS.
import type { PerturbationKernels, ResidentMemory } from './kernels';
import { JsKernels } from './kernels-js';
import { WasmKernels } from './kernels-wasm';
import { wasmSimdSupported } from './wasm/load';

export type KernelChoice = 'auto' | 'js' | 'wasm-simd';

export function createKernels(choice: KernelChoice = 'auto'): PerturbationKernels & Partial<ResidentMemory> {
  if (choice === 'js') return new JsKernels();
  if (choice === 'wasm-simd' || wasmSimdSupported()) return new WasmKernels();
  return new JsKernels();
}

export { wasmSimdSupported };
