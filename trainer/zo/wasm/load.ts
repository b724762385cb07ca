// Instantiates kernels.wat (compiled by scripts/build.mjs) and fills its two tables with Zq.
import { ZQ, ZQ_SIZE } from '../generator';
import { WASM_BASE64 } from './kernels.generated';

/** The module's exports; pointers are byte addresses in its memory. */
export interface KernelExports {
  readonly memory: WebAssembly.Memory;
  perturb(w: number, n: number, off: number, key: number, s: number): void;
  perturb2(w: number, n: number, off: number, keyA: number, a: number, keyB: number, b: number): void;
  perturbStore(w: number, zq: number, n: number, off: number, key: number, s: number): void;
  perturbStored(w: number, zq: number, n: number, s: number): void;
  perturb2Stored(w: number, zq: number, n: number, off: number, a: number, keyB: number, b: number): void;
  accumulate(s: number, n: number, off: number, keys: number, coeffs: number, m: number): void;
  materialize(w: number, w0: number, s: number, n: number, scale: number): void;
  addConstant(w: number, n: number, c: number): void;
}

/** Byte layout of the memory, mirrored from the header of kernels.wat. */
export const LAYOUT = {
  tableF32: 0,
  tableF64: 262_144,
  keys: 786_432,
  maxSeeds: 8192,
  coeffs: 786_432 + 8192 * 4,
  chunk: 8192,
  chunkS: 786_432 + 8192 * 12,
  chunkW0: 786_432 + 8192 * 20,
  chunkW: 786_432 + 8192 * 24,
  /** First byte free for resident weights: the module's initial 17 pages. */
  residentBase: 17 * 65_536,
} as const;

/**
 * Compiles base64 module bytes once: the module, or null where the engine lacks WebAssembly SIMD
 * (validate() is false; the JS loops take over). One per generated module (kernels.wat, rank1.wat).
 */
export function simdModule(base64: string): () => WebAssembly.Module | null {
  let cached: WebAssembly.Module | null | undefined;
  return () => {
    if (cached === undefined) {
      const bytes = Buffer.from(base64, 'base64');
      cached = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
    }
    return cached;
  };
}

const compiledModule = simdModule(WASM_BASE64);

/** The compiled module, to instantiate elsewhere (a worker thread); throws where SIMD is unavailable. */
export function kernelModule(): WebAssembly.Module {
  const module = compiledModule();
  if (module === null) throw new Error('WebAssembly SIMD is not available in this JavaScript engine');
  return module;
}

export function wasmSimdSupported(): boolean {
  return compiledModule() !== null;
}

/** A fresh instance with its own memory (each ParameterSet owns one), tables filled. */
export function instantiateKernels(): KernelExports {
  const exports = new WebAssembly.Instance(kernelModule(), {}).exports as unknown as KernelExports;
  const buffer = exports.memory.buffer;
  new Float32Array(buffer, LAYOUT.tableF32, ZQ_SIZE).set(ZQ);
  new Float64Array(buffer, LAYOUT.tableF64, ZQ_SIZE).set(ZQ);
  return exports;
}
