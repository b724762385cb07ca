// What a round's change to S would cost if each matrix's z were rank 1 (z_j = u_j·v_jᵀ from seed j: the route
// docs/results.md measures for rounds at scale, not the generator the product uses): the round's r seeds
// become one product S += (U·diag(C))·V per matrix, in float64 through onnxruntime's CPU MatMul (the
// product's own runtime). With u, v quantised to integers (|·| ≤ 512 here: scale 64 each, a product of
// scale 4,096 like today's table) every partial sum is an integer below 2⁵³, so any summation order, any
// thread count gives the same bits: checked against BigInt sums at 2,000 entries.
// `node --import tsx bench/rank1-round.ts [seeds 150] [threads 1]` prints one JSON line per run.
import * as ort from 'onnxruntime-node';
import { createRng } from '../trainer/data/rng';
import { DataType, encodeGraph, node, valueInfo } from '../trainer/model/onnx';

const ROWS = 4096;
const COLUMNS = 4096;
/** The GPT-2 builder's gpt-1.3b, the size the projection is made for. */
const PROJECT_PARAMS = 1_315_700_000;
const RUNS = 4;

function productGraph(rows: number, columns: number, seeds: number): Uint8Array {
  return encodeGraph({
    name: 'rank-round',
    node: [node('MatMul', ['u', 'v'], ['p'], 'product'), node('Add', ['s', 'p'], ['y'], 'accumulate')],
    input: [
      valueInfo('s', DataType.DOUBLE, [rows, columns]),
      valueInfo('u', DataType.DOUBLE, [rows, seeds]),
      valueInfo('v', DataType.DOUBLE, [seeds, columns]),
    ],
    output: [valueInfo('y', DataType.DOUBLE, [rows, columns])],
  });
}

async function main(): Promise<void> {
  const seeds = Number(process.argv[2] ?? 150);
  const threads = Number(process.argv[3] ?? 1);
  const session = await ort.InferenceSession.create(productGraph(ROWS, COLUMNS, seeds), { intraOpNumThreads: threads, executionProviders: ['cpu'] });
  const rng = createRng(12345);
  const integer = (bound: number): number => rng.nextInt(2 * bound + 1) - bound;
  const coefficients = Float64Array.from({ length: seeds }, () => integer(1_000_000));
  const u = new Float64Array(ROWS * seeds);
  for (let i = 0; i < ROWS; i++) for (let j = 0; j < seeds; j++) u[i * seeds + j] = integer(512) * coefficients[j];
  const v = Float64Array.from({ length: seeds * COLUMNS }, () => integer(512));
  let sums: Float64Array = new Float64Array(ROWS * COLUMNS);
  const ms: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const start = process.hrtime.bigint();
    const out = await session.run({
      s: new ort.Tensor('float64', sums, [ROWS, COLUMNS]),
      u: new ort.Tensor('float64', u, [ROWS, seeds]),
      v: new ort.Tensor('float64', v, [seeds, COLUMNS]),
    });
    sums = out.y.data as Float64Array;
    ms.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  let inexact = 0;
  for (let k = 0; k < 2000; k++) {
    const i = (k * 7919) % ROWS;
    const j = (k * 104729) % COLUMNS;
    let want = 0n;
    for (let q = 0; q < seeds; q++) want += BigInt(u[i * seeds + q]) * BigInt(v[q * COLUMNS + j]);
    if (BigInt(sums[i * COLUMNS + j]) !== BigInt(RUNS) * want) inexact++;
  }
  await session.release();
  const best = Math.min(...ms.slice(1));
  process.stdout.write(
    `${JSON.stringify({
      params: ROWS * COLUMNS,
      seeds,
      threads,
      ms: ms.map((t) => Math.round(t)),
      bestMs: Math.round(best),
      gflops: Number(((2 * seeds * ROWS * COLUMNS) / best / 1e6).toFixed(1)),
      projected1p3bSeconds: Number(((best * PROJECT_PARAMS) / (ROWS * COLUMNS) / 1e3).toFixed(1)),
      inexactOf2000: inexact,
    })}\n`,
  );
}

void main();
