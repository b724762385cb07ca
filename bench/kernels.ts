// Perturbation-kernel benchmark: the ZO engine's hot passes measured side by side on one thread in one run,
// interleaved round by round; medians.
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
  /** Interleaved rounds after a warm-up round; each pass's median counts (default 3). */
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

function filled(n: number): Float32Array {
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = ((i * 2654435761) % 1000) / 1e4 - 0.05;
  return w;
}

interface Measurement {
  readonly pass: string;
  readonly kernel: KernelBenchRow['kernel'];
  readonly units: number;
  readonly unit: KernelBenchRow['unit'];
  readonly run: () => void;
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Median seconds of each measurement over `repeats` interleaved rounds (A B C … A B C …) after one
 * warm-up round, so a burst of load from other work on the machine lands on every pass alike.
 */
function timeInterleaved(list: readonly Measurement[], repeats: number): number[] {
  const seconds = list.map(() => [] as number[]);
  for (let r = -1; r < repeats; r++) {
    list.forEach((m, i) => {
      const start = process.hrtime.bigint();
      m.run();
      if (r >= 0) seconds[i].push(Number(process.hrtime.bigint() - start) / 1e9);
    });
  }
  return seconds.map(medianOf);
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
  const views = wasm.allocateResidentViews(n, n);
  if (views?.zStore == null) throw new Error(`cannot place ${n} parameters and their z store in WebAssembly memory`);
  const resident = views.weights;
  const zStore = views.zStore;
  const jsZStore = new Int16Array(n);
  resident.set(filled(n));
  const outside = filled(n);
  const w0 = filled(n);
  const keyA = seedKey(1, 1);
  const keyB = seedKey(1, 2);

  // Exact rebuild: S += Σ_j C_j·Zq_j. Single-seed passes stream S once per seed; the blocked pass once.
  const keys = new Uint32Array(m);
  const coeffs = new Float64Array(m);
  for (let j = 0; j < m; j++) {
    keys[j] = seedKey(7, j);
    coeffs[j] = (j % 13) - 6;
  }
  const S = new Float64Array(n);
  const single = (kernels: PerturbationKernels, count: number) => () => {
    for (let j = 0; j < count; j++) kernels.accumulate(S, 0, keys.subarray(j, j + 1), coeffs.subarray(j, j + 1));
  };
  const jsPasses = Math.max(1, passes >> 2);
  const jsRebuildN = Math.max(8, rebuildN >> 3);
  const P = 'params/s' as const;
  const SP = 'seed·params/s' as const;
  const list: Measurement[] = [
    { pass: 'memory pass w += c', kernel: 'wasm-simd', units: n, unit: P, run: () => wasm.exports.addConstant(resident.byteOffset, n, 1e-7) },
    { pass: 'perturb, resident weights', kernel: 'wasm-simd', units: n, unit: P, run: () => wasm.perturb(resident, 0, keyA, 1e-4) },
    { pass: 'perturb, weights outside (chunked)', kernel: 'wasm-simd', units: n, unit: P, run: () => wasm.perturb(outside, 0, keyA, 1e-4) },
    { pass: 'perturb', kernel: 'js', units: n, unit: P, run: () => js.perturb(outside, 0, keyA, 1e-4) },
    { pass: 'perturb2 (fused), resident', kernel: 'wasm-simd', units: n, unit: P, run: () => wasm.perturb2(resident, 0, keyA, 1e-4, keyB, -1e-4) },
    { pass: 'perturb2 (fused)', kernel: 'js', units: n, unit: P, run: () => js.perturb2(outside, 0, keyA, 1e-4, keyB, -1e-4) },
    { pass: `rebuild, ${passes} single-seed passes`, kernel: 'wasm-simd', units: passes * n, unit: SP, run: single(wasm, passes) },
    {
      pass: `rebuild, ${m} seeds blocked`,
      kernel: 'wasm-simd',
      units: m * rebuildN,
      unit: SP,
      run: () => wasm.accumulate(S.subarray(0, rebuildN), 0, keys, coeffs),
    },
    { pass: `rebuild, ${jsPasses} single-seed passes`, kernel: 'js', units: jsPasses * n, unit: SP, run: single(js, jsPasses) },
    {
      pass: `rebuild, ${m} seeds blocked`,
      kernel: 'js',
      units: m * jsRebuildN,
      unit: SP,
      run: () => js.accumulate(S.subarray(0, jsRebuildN), 0, keys, coeffs),
    },
    { pass: 'materialize w = fl32(w0 + c·S)', kernel: 'wasm-simd', units: n, unit: P, run: () => wasm.materialize(resident, w0, S, -1e-12) },
    { pass: 'materialize w = fl32(w0 + c·S)', kernel: 'js', units: n, unit: P, run: () => js.materialize(outside, w0, S, -1e-12) },
    // The stored-z passes of a ZO step: one generation (perturb2Stored, or perturbStore for the first
    // step), the other passes read the seed's Zq back.
    { pass: 'perturbStore (hash, keep Zq), resident', kernel: 'wasm-simd', units: n, unit: P, run: () => wasm.perturbStore(resident, zStore, 0, keyA, 1e-4) },
    { pass: 'perturbStored (read Zq), resident', kernel: 'wasm-simd', units: n, unit: P, run: () => wasm.perturbStored(resident, zStore, -1e-4) },
    {
      pass: 'perturb2Stored (fused), resident',
      kernel: 'wasm-simd',
      units: n,
      unit: P,
      run: () => wasm.perturb2Stored(resident, zStore, 0, 1e-4, keyA, -1e-4),
    },
    { pass: 'perturbStored (read Zq), outside', kernel: 'wasm-simd', units: n, unit: P, run: () => wasm.perturbStored(outside, zStore, -1e-4) },
    { pass: 'perturb2Stored (fused), outside', kernel: 'wasm-simd', units: n, unit: P, run: () => wasm.perturb2Stored(outside, zStore, 0, 1e-4, keyA, -1e-4) },
    { pass: 'perturbStored (read Zq)', kernel: 'js', units: n, unit: P, run: () => js.perturbStored(outside, jsZStore, -1e-4) },
    { pass: 'perturb2Stored (fused)', kernel: 'js', units: n, unit: P, run: () => js.perturb2Stored(outside, jsZStore, 0, 1e-4, keyA, -1e-4) },
  ];
  const seconds = timeInterleaved(list, repeats);
  const rows: KernelBenchRow[] = list.map((x, i) => {
    const row = { pass: x.pass, kernel: x.kernel, perSecond: x.units / seconds[i], unit: x.unit, nsPerUnit: (seconds[i] * 1e9) / x.units };
    log(
      `${x.pass.padEnd(34)} ${x.kernel.padEnd(9)} ${(row.perSecond / 1e9).toFixed(3).padStart(7)} G ${x.unit}  ${row.nsPerUnit.toFixed(3)} ns/${x.unit === 'params/s' ? 'param' : 'seed·param'}`,
    );
    return row;
  });
  const [floor, perturbWasm, , perturbJs, , , singleWasm, blockedWasm] = seconds;

  const perturbParamsPerSecond = n / perturbWasm;
  const speedup = (m * rebuildN) / blockedWasm / ((passes * n) / singleWasm);
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
