// Perturbation-kernel benchmark: the ZO engine's hot passes measured side by side on one thread in one run.
// `fedkseed bench engine` calls runKernelBench(); `node --import tsx bench/kernels.ts [params]` runs it alone.
import { seedKey } from '../trainer/zo/generator';
import type { PerturbationKernels } from '../trainer/zo/kernels';
import { JsKernels } from '../trainer/zo/kernels-js';
import { WasmKernels } from '../trainer/zo/kernels-wasm';

export interface KernelBenchOptions {
  /** Parameters in the float32 buffer of the single-pass measurements (default 4M: 16 MiB f32, 32 MiB f64). */
  readonly params?: number;
  /** Seeds of the blocked rebuild (default 4096, the paper's K). */
  readonly seeds?: number;
  /** Parameters the blocked rebuild covers with all seeds (default 512K for WASM, 1/8 of that for JS). */
  readonly rebuildParams?: number;
  /** Single-seed accumulate passes over the full buffer, extrapolated per seed·param (default 8). */
  readonly singleSeedPasses?: number;
  /** Repetitions per measurement; the fastest counts (default 3). */
  readonly repeats?: number;
  readonly log?: (line: string) => void;
}

export interface KernelBenchRow {
  readonly pass: string;
  readonly kernel: 'js' | 'wasm-simd';
  /** Units per second: parameters, or seed·parameters for rebuilds. */
  readonly perSecond: number;
  readonly unit: 'params/s' | 'seed·params/s';
  readonly nsPerUnit: number;
}

export interface KernelBenchResult {
  readonly params: number;
  readonly seeds: number;
  readonly rows: readonly KernelBenchRow[];
  /** WASM perturb (resident weights) in parameters per second. */
  readonly perturbParamsPerSecond: number;
  /** WASM perturb time over the plain memory pass's time (1 = as fast as memory allows). */
  readonly perturbOverMemoryPass: number;
  /** WASM over JS for perturb. */
  readonly wasmOverJs: number;
  /** Blocked rebuild over single-seed passes, per seed·param, WASM. */
  readonly blockedOverSingleSeed: number;
  readonly targets: {
    readonly perturbGParamsPerSecond: { readonly target: 0.9; readonly reached: number; readonly met: boolean };
    readonly blockedRebuildSpeedup: { readonly target: 2; readonly reached: number; readonly met: boolean };
  };
}

/** Best-of-`repeats` seconds of `run` after one warm-up call. */
function time(repeats: number, run: () => void): number {
  run();
  let best = Infinity;
  for (let r = 0; r < repeats; r++) {
    const start = process.hrtime.bigint();
    run();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
  }
  return best;
}

function filled(n: number): Float32Array {
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = ((i * 2654435761) % 1000) / 1e4 - 0.05;
  return w;
}

export function runKernelBench(options: KernelBenchOptions = {}): KernelBenchResult {
  const n = options.params ?? 4 << 20;
  const m = options.seeds ?? 4096;
  const rebuildN = Math.min(n, options.rebuildParams ?? 512 << 10);
  const passes = options.singleSeedPasses ?? 8;
  const repeats = options.repeats ?? 3;
  const log = options.log ?? (() => {});
  const js = new JsKernels();
  const wasm = new WasmKernels();
  const resident = wasm.allocateResident(n);
  if (resident === null) throw new Error(`cannot place ${n} parameters in WebAssembly memory`);
  resident.set(filled(n));
  const outside = filled(n);
  const keyA = seedKey(1, 1);
  const keyB = seedKey(1, 2);
  const rows: KernelBenchRow[] = [];
  const add = (pass: string, kernel: KernelBenchRow['kernel'], units: number, seconds: number, unit: KernelBenchRow['unit']) => {
    const row = { pass, kernel, perSecond: units / seconds, unit, nsPerUnit: (seconds * 1e9) / units };
    rows.push(row);
    log(`${pass.padEnd(34)} ${kernel.padEnd(9)} ${(row.perSecond / 1e9).toFixed(3).padStart(7)} G${unit}  ${row.nsPerUnit.toFixed(3)} ns`);
  };

  // Single passes over the whole buffer.
  const floor = time(repeats, () => wasm.exports.addConstant(resident.byteOffset, n, 1e-7));
  add('memory pass w += c', 'wasm-simd', n, floor, 'params/s');
  const perturbWasm = time(repeats, () => wasm.perturb(resident, 0, keyA, 1e-4));
  add('perturb, resident weights', 'wasm-simd', n, perturbWasm, 'params/s');
  add('perturb, weights outside (chunked)', 'wasm-simd', n, time(repeats, () => wasm.perturb(outside, 0, keyA, 1e-4)), 'params/s');
  const perturbJs = time(repeats, () => js.perturb(outside, 0, keyA, 1e-4));
  add('perturb', 'js', n, perturbJs, 'params/s');
  add('perturb2 (fused), resident', 'wasm-simd', n, time(repeats, () => wasm.perturb2(resident, 0, keyA, 1e-4, keyB, -1e-4)), 'params/s');
  add('perturb2 (fused)', 'js', n, time(repeats, () => js.perturb2(outside, 0, keyA, 1e-4, keyB, -1e-4)), 'params/s');

  // Exact rebuild: S += Σ_j C_j·Zq_j. Single-seed passes stream S once per seed; the blocked pass once.
  const keys = new Uint32Array(m);
  const coeffs = new Float64Array(m);
  for (let j = 0; j < m; j++) {
    keys[j] = seedKey(7, j);
    coeffs[j] = (j % 13) - 6;
  }
  const S = new Float64Array(n);
  const single = (kernels: PerturbationKernels, count: number) =>
    time(1, () => {
      for (let j = 0; j < count; j++) kernels.accumulate(S, 0, keys.subarray(j, j + 1), coeffs.subarray(j, j + 1));
    });
  const singleWasm = single(wasm, passes);
  add(`rebuild, ${passes} single-seed passes`, 'wasm-simd', passes * n, singleWasm, 'seed·params/s');
  const blockedWasm = time(1, () => wasm.accumulate(S.subarray(0, rebuildN), 0, keys, coeffs));
  add(`rebuild, ${m} seeds blocked`, 'wasm-simd', m * rebuildN, blockedWasm, 'seed·params/s');
  const jsPasses = Math.max(1, passes >> 2);
  const singleJs = single(js, jsPasses);
  add(`rebuild, ${jsPasses} single-seed passes`, 'js', jsPasses * n, singleJs, 'seed·params/s');
  const jsRebuildN = Math.max(8, rebuildN >> 3);
  add(`rebuild, ${m} seeds blocked`, 'js', m * jsRebuildN, time(1, () => js.accumulate(S.subarray(0, jsRebuildN), 0, keys, coeffs)), 'seed·params/s');

  const w0 = filled(n);
  add('materialize w = fl32(w0 + c·S)', 'wasm-simd', n, time(repeats, () => wasm.materialize(resident, w0, S, -1e-12)), 'params/s');
  add('materialize w = fl32(w0 + c·S)', 'js', n, time(repeats, () => js.materialize(outside, w0, S, -1e-12)), 'params/s');

  const perturbParamsPerSecond = n / perturbWasm;
  const blockedOverSingleSeed = (passes * n) / singleWasm / ((m * rebuildN) / blockedWasm);
  const speedup = 1 / blockedOverSingleSeed;
  return {
    params: n,
    seeds: m,
    rows,
    perturbParamsPerSecond,
    perturbOverMemoryPass: perturbWasm / floor,
    wasmOverJs: perturbJs / perturbWasm,
    blockedOverSingleSeed: speedup,
    targets: {
      perturbGParamsPerSecond: { target: 0.9, reached: perturbParamsPerSecond / 1e9, met: perturbParamsPerSecond >= 0.9e9 },
      blockedRebuildSpeedup: { target: 2, reached: speedup, met: speedup >= 2 },
    },
  };
}

if (process.argv[1]?.replace(/\\/g, '/').endsWith('bench/kernels.ts')) {
  const params = process.argv[2] ? Number(process.argv[2]) : undefined;
  const result = runKernelBench({ params, log: (line) => console.log(line) });
  const t = result.targets;
  console.log(
    `\nperturb: ${t.perturbGParamsPerSecond.reached.toFixed(3)} G params/s (target ${t.perturbGParamsPerSecond.target}), ` +
      `${result.perturbOverMemoryPass.toFixed(1)}× the memory pass, ${result.wasmOverJs.toFixed(1)}× JS\n` +
      `blocked rebuild: ${t.blockedRebuildSpeedup.reached.toFixed(2)}× single-seed passes (target ${t.blockedRebuildSpeedup.target}×)`,
  );
}
