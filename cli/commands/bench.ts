import { type Command, InvalidArgumentError } from 'commander';
import { ENGINE_SIZES, ENGINE_TARGETS, mark, runEngineBench, type EngineBenchResult, type EngineSize } from '../../bench/engine';
import { runFederationBench, type FederationBenchReport } from '../../bench/federation';
import { CliError } from '../errors';
import { positiveInt } from '../options';
import { emitJson, note } from '../output';

interface EngineCliOptions {
  sizes: EngineSize[];
  quick?: boolean;
  json?: boolean;
  threads?: number;
}

interface FederationCliOptions {
  json?: boolean;
  idle: number;
  rounds: number;
  clients: number;
  params: number;
}

function sizeList(value: string): EngineSize[] {
  const names = value.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const known = Object.keys(ENGINE_SIZES);
  for (const n of names) if (!known.includes(n)) throw new InvalidArgumentError(`unknown size "${n}" (choose from ${known.join(', ')})`);
  if (names.length === 0) throw new InvalidArgumentError('expected at least one size');
  return [...new Set(names)] as EngineSize[];
}

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('Benchmarks that print ratios measured side by side in one run');
  bench
    .command('engine')
    .description('ZO step vs two loss forwards (~10M and ~124M parameters, seq 128, batch 1 and 8) and the perturbation kernels, with the targets')
    .option('--sizes <list>', `model sizes, comma-separated (${Object.keys(ENGINE_SIZES).join(', ')})`, sizeList, ['10m', '124m'] as EngineSize[])
    .option('--quick', 'a ~1-minute smoke run: the small size only, fewer repeats')
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .option('--json', 'print the result as one JSON object')
    .action((o: EngineCliOptions) => benchEngine(o));
  bench
    .command('federation')
    .description('bytes per client per round vs the paper and FedAvg, server memory with idle connections, aggregation time')
    .option('--idle <n>', 'idle WebSocket connections to hold open', positiveInt, 10_000)
    .option('--rounds <n>', 'federated rounds per sampling mode', positiveInt, 6)
    .option('--clients <n>', 'clients per round', positiveInt, 4)
    .option('--params <n>', 'model size d for the FedAvg comparison', positiveInt, 124_000_000)
    .option('--json', 'print the result as one JSON object')
    .action((o: FederationCliOptions) => benchFederation(o));
  bench
    .command('study')
    .description('(pending) study benchmark')
    .action(() => {
      throw new CliError('fedkseed bench study is not available in this build yet');
    });
}

/** Columns padded to their widest cell; `align` has one letter per column, 'l' or 'r' (figures). */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[], align: string): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: readonly string[]) => cells.map((x, c) => (align[c] === 'r' ? x.padStart(widths[c]) : x.padEnd(widths[c]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

async function benchEngine(o: EngineCliOptions): Promise<void> {
  const result = await runEngineBench({ sizes: o.sizes, quick: o.quick, threads: o.threads, log: note });
  if (o.json) emitJson({ bench: 'engine', ...result });
  else process.stdout.write(`${engineReport(result)}\n`);
}

const ms = (x: number): string => x.toFixed(1);

export function engineReport(r: EngineBenchResult): string {
  const out: string[] = [`ZO step vs two loss forwards (seq 128, ${r.threads} onnxruntime threads on ${r.cores} cores; medians, interleaved)`];
  out.push(
    formatTable(
      ['model', 'params', 'batch', '2 forwards ms', 'ZO step ms', 'step / 2 fwd', 'target'],
      r.sizes.flatMap((s) =>
        s.steps.map((t) => [s.size, `${(s.parameters / 1e6).toFixed(1)}M`, String(t.batch), ms(t.twoForwardsMs), ms(t.stepMs), `${t.ratio.toFixed(3)}×`, t.target ? `≤ ${t.target.target}× ${mark(t.target.met)}` : '—']),
      ),
      'lrrrrrl',
    ),
  );
  out.push('', 'Where a step goes (ms, medians, measured inside the steps; other = JS and scheduling overhead)');
  out.push(
    formatTable(
      ['model', 'batch', 'forwards', 'perturb', 'perturb2 (fused)', 'batch build', 'other', 'passes / step'],
      r.sizes.flatMap((s) =>
        s.steps.map((t) => {
          const b = t.breakdown;
          return [s.size, String(t.batch), ms(b.forwards), ms(b.perturb), ms(b.perturb2), b.batch.toFixed(2), ms(b.other), `${(((b.perturb + b.perturb2) / t.stepMs) * 100).toFixed(1)}%`];
        }),
      ),
      'lrrrrrrr',
    ),
  );
  const k = r.kernels;
  out.push('', `Kernels, one thread, ${(k.params / 2 ** 20).toFixed(0)}M parameters (${((k.params * 4) / 2 ** 20).toFixed(0)} MiB float32), ${k.seeds} seeds for the blocked rebuild`);
  out.push(formatTable(['pass', 'kernel', 'G units/s', 'ns/unit'], k.rows.map((row) => [row.pass, row.kernel, `${(row.perSecond / 1e9).toFixed(3)} ${row.unit}`, row.nsPerUnit.toFixed(3)]), 'llrr'));
  const t = k.targets;
  out.push(
    '',
    `perturb (WASM SIMD, resident): ${t.perturbGParamsPerSecond.reached.toFixed(3)} G params/s per core (target ≥ ${ENGINE_TARGETS.perturbGParamsPerSecond} ${mark(t.perturbGParamsPerSecond.met)}); ` +
      `${k.perturbOverMemoryPass.toFixed(1)}× the memory pass's time, ${k.wasmOverJs.toFixed(1)}× faster than JS`,
    `rebuild: ${k.seeds} seeds blocked is ${t.blockedRebuildSpeedup.reached.toFixed(2)}× single-seed passes per seed·param (target ≥ ${ENGINE_TARGETS.blockedRebuildSpeedup}× ${mark(t.blockedRebuildSpeedup.met)})`,
    `total ${r.totalSeconds.toFixed(0)} s`,
  );
  return out.join('\n');
}

async function benchFederation(o: FederationCliOptions): Promise<void> {
  note(`federation bench: ${o.rounds} rounds × ${o.clients} clients per sampling mode, 1,000-upload aggregation, ${o.idle.toLocaleString()} idle connections…`);
  // Its own progress lines repeat the table's figures: keep them for --json runs only (on stderr).
  const report = await runFederationBench({ idleConnections: o.idle, rounds: o.rounds, clients: o.clients, paramCount: o.params, log: o.json ? note : () => {} });
  if (o.json) emitJson({ bench: 'federation', ...report });
  else process.stdout.write(`${federationReport(report)}\n`);
}

export function federationReport(r: FederationBenchReport): string {
  const out = ['Bytes per client per round (K = 4096, τ = 200; up + down, framing included)'];
  out.push(
    formatTable(
      ['sampling', 'mean', 'max', 'paper 17,988 B ÷ mean', 'FedAvg ÷ mean'],
      r.bytes.map((b) => [b.sampling, `${b.meanPerClientRound.toLocaleString()} B`, `${b.maxPerClientRound.toLocaleString()} B`, `${b.vsPaper.toFixed(2)}×`, `${b.vsFedAvg.toExponential(2)}×`]),
      'lrrrr',
    ),
    `FedAvg at this d: ${(r.fedAvgPerClientRound / 2 ** 20).toFixed(0)} MiB per client per round`,
    '',
    `Aggregation of ${r.aggregation.uploads.toLocaleString()} uploads of 200 pairs: decode ${r.aggregation.decodeMs.toFixed(1)} ms, aggregate + quantise + importance ${r.aggregation.aggregateMs.toFixed(1)} ms (target < 100 ms ${mark(r.aggregation.aggregateMs < 100)})`,
    `${r.idle.connections.toLocaleString()} idle connections: server RSS ${(r.idle.serverRssBytes / 2 ** 20).toFixed(0)} MiB (target < 1024 MiB ${mark(r.idle.serverRssBytes < 2 ** 30)})${r.idle.refused ? `; refused: ${r.idle.refused}` : ''}`,
  );
  return out.join('\n');
}
