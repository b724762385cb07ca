// The perturbation graph (trainer/device/perturbation-graph.ts) against the WASM kernel, side by side in one
// run, interleaved, medians; plus a bit-for-bit check of the two results on the benchmarked buffer.
//   node --import tsx bench/perturbation-graph.ts [params=4194304] [providers=cpu] [threads=1]
// On a GPU machine pass e.g. `webgpu` or `cuda`: inputs and outputs cross to the host on every run here,
// so the GPU figure includes those copies (docs/gpu.md says what a resident run would avoid).
import { PerturbationGraphSession } from '../trainer/device/perturbation-graph';
import { describeReport } from '../trainer/device/providers';
import { seedKey } from '../trainer/zo/generator';
import { WasmKernels } from '../trainer/zo/kernels-wasm';

export interface GraphBenchRow {
  readonly pass: string;
  readonly runner: string;
  readonly nsPerParam: number;
}

export interface GraphBenchResult {
  readonly params: number;
  readonly provider: string;
  readonly threads: number;
  readonly rows: readonly GraphBenchRow[];
  readonly identical: boolean;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function runPerturbationGraphBench(params = 4 << 20, providers = 'cpu', threads = 1, repeats = 5): Promise<GraphBenchResult> {
  const single = await PerturbationGraphSession.create({ seeds: 1, executionProviders: providers, intraOpNumThreads: threads });
  const fused = await PerturbationGraphSession.create({ seeds: 2, executionProviders: providers, intraOpNumThreads: threads });
  const wasm = new WasmKernels();
  const w = wasm.allocateResident(params);
  if (!w) throw new Error(`cannot hold ${params} parameters in WASM memory`);
  for (let i = 0; i < params; i++) w[i] = ((i * 2654435761) % 1000) / 1e4 - 0.05;
  const input = w.slice();
  const out = new Float32Array(params);
  const keyA = seedKey(1, 0);
  const keyB = seedKey(1, 1);

  const times: Record<string, number[]> = { wasm1: [], graph1: [], wasm2: [], graph2: [] };
  const time = async (slot: string, f: () => unknown): Promise<void> => {
    const t0 = performance.now();
    await f();
    times[slot].push(performance.now() - t0);
  };
  for (let r = 0; r <= repeats; r++) {
    const warm = r === 0;
    await time('wasm1', () => wasm.perturb(w, 0, keyA, 1e-3));
    await time('graph1', () => single.apply(input, 0, [{ key: keyA, s: 1e-3 }], out));
    await time('wasm2', () => wasm.perturb2(w, 0, keyA, -1e-3, keyB, 1e-3));
    await time('graph2', () =>
      fused.apply(
        input,
        0,
        [
          { key: keyA, s: -1e-3 },
          { key: keyB, s: 1e-3 },
        ],
        out,
      ),
    );
    if (warm) for (const k of Object.keys(times)) times[k].length = 0;
  }

  // Same bits on the benchmarked buffer: one pass from the same input.
  const check = input.slice();
  wasm.perturb(check, 0, keyA, 1e-3);
  await single.apply(input, 0, [{ key: keyA, s: 1e-3 }], out);
  const a = new Uint32Array(check.buffer, check.byteOffset, params);
  const b = new Uint32Array(out.buffer, out.byteOffset, params);
  let identical = true;
  for (let i = 0; i < params && identical; i++) identical = a[i] === b[i];

  const provider = describeReport(single.providerReport);
  await single.release();
  await fused.release();
  const ns = (slot: string): number => (median(times[slot]) * 1e6) / params;
  return {
    params,
    provider,
    threads,
    identical,
    rows: [
      { pass: 'perturb (1 seed)', runner: 'wasm-simd, 1 thread, in place', nsPerParam: ns('wasm1') },
      { pass: 'perturb (1 seed)', runner: `graph on ${single.providerReport.used}, ${threads} thread(s)`, nsPerParam: ns('graph1') },
      { pass: 'perturb2 (2 seeds fused)', runner: 'wasm-simd, 1 thread, in place', nsPerParam: ns('wasm2') },
      { pass: 'perturb2 (2 seeds fused)', runner: `graph on ${single.providerReport.used}, ${threads} thread(s)`, nsPerParam: ns('graph2') },
    ],
  };
}

async function main(): Promise<void> {
  const [paramsArg, providersArg, threadsArg] = process.argv.slice(2);
  const result = await runPerturbationGraphBench(Number(paramsArg ?? 4 << 20), providersArg ?? 'cpu', Number(threadsArg ?? 1));
  console.log(`perturbation graph vs WASM kernel: ${result.params.toLocaleString('en-US')} parameters, provider ${result.provider}`);
  for (const row of result.rows) console.log(`  ${row.pass.padEnd(26)} ${row.runner.padEnd(34)} ${row.nsPerParam.toFixed(2)} ns/param`);
  console.log(`  graph and kernel results bit-identical: ${result.identical ? 'yes' : 'NO'}`);
  if (!result.identical) process.exitCode = 1;
}

if (process.argv[1] && import.meta.filename === process.argv[1]) void main();
