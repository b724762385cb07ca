import { type Command, InvalidArgumentError, Option } from 'commander';
import {
  benchCacheDir,
  ENGINE_SIZES,
  ENGINE_TARGETS,
  mark,
  times,
  runEngineBench,
  type DeviceSizeResult,
  type DeviceStepResult,
  type EngineBenchResult,
  type EngineSize,
} from '../../bench/engine';
import { runFederationBench, type FederationBenchReport } from '../../bench/federation';
import { runGatewayBench, type GatewayBenchReport } from '../../bench/gateways';
import { runGenerateBench, type GenerateBenchResult } from '../../bench/generate';
import { runLearningBench, type LearningBenchArm } from '../../bench/learning';
import { GENERATORS, PERTURBATION_SHAPES, type Generator, type PerturbationShape } from '../../protocol';
import { TRAINING_DEFAULTS } from '../../contracts/defaults';
import { runCompletionsBench, type CompletionsBenchResult } from '../../bench/completions';
import { runRoundsBench, type RoundsBenchResult } from '../../bench/rounds';
import { DEVICE_PASS_MODES, runDeviceMemoryBench, runDeviceMemoryProbe, type DeviceMemoryProbe, type DeviceMemoryRow } from '../../bench/device-memory';
import { SUMS_MODES, type SumsMode } from '../../trainer/zo/parameters';
import { MEMORY_SIZES, MEMORY_TARGET, runMemoryBench, runMemoryProbe, type MemoryBenchResult, type MemoryProbe, type MemorySize } from '../../bench/memory';
import { parseMemorySize } from '../../trainer/zo/memory-plan';
import type { PartPrediction } from '../../trainer/device/gpu-model';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { buildTasks, FULL_KS, methodsFor, QUICK_KS, STUDY_SHAPES, type StudyConfig, type TaskId } from '../../bench/study/config';
import { runStudy } from '../../bench/study/run-study';
import { DEFAULT_FORTUNES_DIR } from '../../bench/study/tasks';
import { nonNegativeInt, positiveInt, positiveNumber, uint32 } from '../options';
import { emitJson, note } from '../output';
import { isPostgresUrl, redactStoreUrl } from '../../federation/gateway/url';
import { readFileSync } from 'node:fs';
import { errorMessage } from '../../protocol/errors';

interface EngineCliOptions {
  sizes?: EngineSize[];
  provider: 'cpu' | 'webgpu';
  quick?: boolean;
  json?: boolean;
  threads?: number;
  cacheDir?: string;
}

interface GenerateCliOptions {
  newTokens: number[];
  prompt: number;
  batch: number;
  repeats: number;
  threads?: number;
  cacheDir?: string;
  json?: boolean;
}

interface CompletionsCliOptions {
  data: string;
  prompts: number;
  tokens: number;
  threads: number;
  seconds: number;
  json?: boolean;
}

function learningArms(value: string): LearningBenchArm[] {
  return value.split(',').map((part) => {
    const [shape, eta] = part.trim().split(':');
    if (!(PERTURBATION_SHAPES as readonly string[]).includes(shape))
      throw new InvalidArgumentError(`unknown shape "${shape}" (${PERTURBATION_SHAPES.join(', ')})`);
    const rate = eta === undefined ? TRAINING_DEFAULTS.eta : Number(eta);
    if (!(rate > 0) || !Number.isFinite(rate)) throw new InvalidArgumentError(`"${part}": η must be a positive number`);
    return { shape: shape as PerturbationShape, eta: rate };
  });
}

interface LearningCliOptions {
  data: string;
  arms: LearningBenchArm[];
  steps: number;
  evalEvery: number;
  evalExamples: number;
  threads?: number;
  json?: boolean;
}

async function benchLearning(o: LearningCliOptions): Promise<void> {
  const r = await runLearningBench({
    data: o.data,
    arms: o.arms,
    steps: o.steps,
    evalEvery: o.evalEvery,
    evalExamples: o.evalExamples,
    threads: o.threads,
    log: o.json ? undefined : note,
  });
  if (o.json) return emitJson({ ...r });
  process.stdout.write(`data ${r.data}: ${r.steps} steps per arm, ${r.heldOutExamples} held-out examples\n`);
  process.stdout.write('| shape | η | held-out change | best change | × the first | ms/step | diverged |\n|---|---|---|---|---|---|---|\n');
  for (const row of r.rows) {
    process.stdout.write(
      `| ${row.shape} | ${row.eta} | ${row.change.toFixed(4)} | ${row.bestChange.toFixed(4)} | ${row.ratio.toFixed(2)}× | ${row.msPerStep.toFixed(1)} | ${row.diverged ?? 'no'} |\n`,
    );
  }
}

function countList(value: string): number[] {
  const n = value.split(',').map((x) => Number(x.trim()));
  if (n.length === 0 || n.some((x) => !Number.isInteger(x) || x < 1)) throw new InvalidArgumentError('expected positive integers, comma-separated');
  return n;
}

interface FederationCliOptions {
  json?: boolean;
  idle: number;
  rounds: number;
  clients: number;
  params: number;
  store?: string;
  storePasswordFile?: string;
  gateways: number[];
  gatewayClients: number;
  gatewayRounds: number;
  gatewayIdle: number;
}

function gatewayCounts(value: string): number[] {
  const counts = value.split(',').map((x) => Number(x.trim()));
  if (counts.length === 0 || !counts.every((n) => Number.isInteger(n) && n >= 1 && n <= 64))
    throw new InvalidArgumentError('a comma-separated list of gateway counts from 1 to 64, e.g. 1,2,4');
  return counts;
}

interface StudyCliOptions {
  quick?: boolean;
  out: string;
  images?: string;
  tasks?: TaskId[];
  ks?: number[];
  shapes: PerturbationShape[];
  repeats?: number;
  rounds?: number;
  eta?: number;
  seed: number;
  verify?: string;
  code: string;
  fortunes: string;
  threads?: number;
}

/** A parser of a comma-separated list of names out of `known` (the option's `what`): unique, in the order given. */
function choiceList<T extends string>(known: readonly T[], what: string): (value: string) => T[] {
  return (value) => {
    const names = value
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean);
    for (const n of names)
      if (!(known as readonly string[]).includes(n)) throw new InvalidArgumentError(`unknown ${what} "${n}" (choose from ${known.join(', ')})`);
    if (names.length === 0) throw new InvalidArgumentError(`expected at least one ${what}`);
    return [...new Set(names)] as T[];
  };
}

function kList(value: string): number[] {
  const ks = value.split(',').map((s) => Number(s.trim()));
  for (const k of ks) if (!Number.isInteger(k) || k < 1 || k > 65536) throw new InvalidArgumentError(`K must be an integer in 1..65536, got "${value}"`);
  return [...new Set(ks)].sort((a, b) => a - b);
}

interface RoundsCliOptions {
  params: number;
  rounds: number;
  seedsPerRound: number;
  k: number;
  spillDir?: string;
  generator: Generator | 'both';
  sums?: SumsMode[];
  parallel?: boolean;
  json?: boolean;
}

interface MemoryCliOptions {
  sizes?: MemorySize[];
  batches: number[];
  maxMemory?: number | 'auto';
  steps: number;
  rounds: number;
  timedSteps: number;
  threads?: number;
  cacheDir?: string;
  json?: boolean;
}

function memoryBudget(value: string): number | 'auto' {
  if (value.trim().toLowerCase() === 'auto') return 'auto';
  try {
    return parseMemorySize(value);
  } catch (e) {
    throw new InvalidArgumentError(errorMessage(e));
  }
}

const MEMORY_HELP = `
Each figure is the peak RSS of its own child process, one at a time. The 1.3B model is generated on
first use into the cache folder (about 5 GB, external data; building it takes ~2.5 minutes and ~5.5 GiB
of memory) and reused; a size is skipped, with the reason, when the machine has too little memory
available for it. The full run takes about 20 minutes on 2 cores, most of it the 1.3B forwards at batch 8.`;

/** Measured with `fedkseed bench engine` and `--quick` (docs/benchmarks.md, "Disk and memory"). */
const ENGINE_RESOURCES_HELP = `
Disk: the models are generated on first use into the cache folder (--cache-dir, outside the
working tree) and reused by later runs: 514 MiB (zo-10m 39 MiB, gpt2-small 475 MiB), 39 MiB
with --quick or --sizes 10m. Delete the folder to reclaim the space.
Memory: peak RSS about 1.8 GiB for the full run (the 124M model), about 0.5 GiB with --quick;
each run prints its own peak RSS at the end.`;

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('Benchmarks that print ratios measured side by side in one run');
  bench
    .command('engine')
    .description('ZO step vs two loss forwards (~10M and ~124M parameters, seq 128, batch 1 and 8) and the perturbation kernels, with the targets')
    .option(
      '--sizes <list>',
      `model sizes, comma-separated (${Object.keys(ENGINE_SIZES).join(', ')}; default 10m,124m, with --quick 10m)`,
      choiceList(Object.keys(ENGINE_SIZES) as EngineSize[], 'size'),
    )
    .option('--quick', 'a ~1-minute smoke run: the small size only, fewer repeats')
    .addOption(
      new Option('--provider <name>', 'also measure the device-resident engine on WebGPU (CPU rows measured in the same run, for the speed-up)')
        .choices(['cpu', 'webgpu'])
        .default('cpu'),
    )
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .option(
      '--cache-dir <dir>',
      'where the generated models are kept between runs (default: $FEDKSEED_BENCH_CACHE, else $XDG_CACHE_HOME/fedkseed/bench, else ~/.cache/fedkseed/bench)',
    )
    .option('--json', 'print the result as one JSON object')
    .addHelpText('after', ENGINE_RESOURCES_HELP)
    .action((o: EngineCliOptions) => benchEngine(o));
  bench
    .command('memory')
    .description(
      "peak RSS of ZO training (local run, federation client; batch 1 and 8) beside an inference session of the same model, 124M and 1.3B, with each buffer's share",
    )
    .option(
      '--sizes <list>',
      `model sizes, comma-separated (${Object.keys(MEMORY_SIZES).join(', ')}; default 124m,1.3b)`,
      choiceList(Object.keys(MEMORY_SIZES) as MemorySize[], 'size'),
    )
    .option('--batches <list>', 'batch sizes, one row each', countList, [1, 8])
    .option(
      '--max-memory <size>',
      `budget of the training processes (e.g. 8G, or auto: what the engine would take; default: ${MEMORY_TARGET.ratio} × the inference session's peak at the same batch)`,
      memoryBudget,
    )
    .option('--steps <n>', 'ZO steps of the local run, and per round of the client', positiveInt, 2)
    .option('--rounds <n>', 'rounds of the client (each applies a coefficient change)', positiveInt, 2)
    .option('--timed-steps <n>', 'local training: steps timed against their own pair of forwards, as bench engine does (0: untimed --steps)', nonNegativeInt, 3)
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .option('--cache-dir <dir>', 'where the generated models are kept between runs (as for bench engine)')
    .option('--json', 'print the result as one JSON object')
    .addHelpText('after', MEMORY_HELP)
    .action((o: MemoryCliOptions) => benchMemory(o));
  bench
    .command('rounds')
    .description(
      "a federation round's coefficient change with S held, in a scratch file and as coefficients, side by side (ms per round, coefficients ÷ file), and a projection at 1.3B",
    )
    .option('--params <n>', 'parameters of the set', positiveInt, 4 << 20)
    .option('--rounds <n>', 'rounds, each a coefficient change', positiveInt, 8)
    .option('--seeds-per-round <n>', "seeds of a round's change (3 clients × τ 50)", positiveInt, 150)
    .option('-k, --k <n>', 'seed pool K: applied seeds never exceed it; the projection applies all of them', positiveInt, 4096)
    .option('--spill-dir <dir>', "folder of the S and replica files (default: the engine's, FEDKSEED_SPILL_DIR or the cache folder)")
    .addOption(new Option('--generator <name>', 'which generators to measure (both: side by side)').choices(['both', ...GENERATORS]).default('both'))
    .addOption(new Option('--sums <modes...>', 'ways of keeping S to measure (a set each: fewer fit larger sets)').choices(SUMS_MODES))
    .option('--parallel', 'split the sets over two threads, as the engine does past 8M parameters (a worker computes every other piece of S)')
    .option('--json', 'print the result as one JSON object')
    .action((o: RoundsCliOptions) => benchRounds(o));
  bench
    .command('memory-probe <probe>', { hidden: true })
    .description('one measurement of bench memory or bench device-memory, in its own process (internal)')
    .action(async (json: string) => {
      const probe = JSON.parse(json) as MemoryProbe | DeviceMemoryProbe;
      const result = probe.kind === 'device-passes' ? await runDeviceMemoryProbe(probe) : await runMemoryProbe(probe);
      process.stdout.write(`${JSON.stringify(result)}\n`);
    });
  bench
    .command('device-memory')
    .description(
      "what a WebGPU step's perturbation passes hold: the process's high-water after the upload and after the passes (lavapipe: the device's memory is the process's), beside the peak counted from the graphs",
    )
    .addOption(new Option('--size <size>', 'model size').choices(Object.keys(ENGINE_SIZES)).default('124m'))
    .option('--steps <n>', "ZO steps' worth of passes", positiveInt, 2)
    .option('--cache-dir <dir>', 'where the generated models are kept between runs (as for bench engine)')
    .option('--json', 'print the result as one JSON object')
    .action(async (o: { size: EngineSize; steps: number; cacheDir?: string; json?: boolean }) => {
      const result = await runDeviceMemoryBench({ preset: ENGINE_SIZES[o.size], steps: o.steps, cacheDir: o.cacheDir, log: note });
      if (o.json) emitJson({ bench: 'device-memory', ...result });
      else process.stdout.write(`${deviceMemoryReport(result.preset, result.rows)}\n`);
    });
  bench
    .command('generate')
    .description('greedy decoding with the KV cache vs without it (tokens/s, side by side) on a ~10M decoder with past key values')
    .option('--new-tokens <list>', 'new-token counts, one row each', countList, [32, 128, 224])
    .option('--prompt <n>', 'prompt tokens per row', positiveInt, 16)
    .option('--batch <n>', 'prompts decoded together', positiveInt, 1)
    .option('--repeats <n>', 'timed runs of each way per row (the median is reported)', positiveInt, 3)
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .option('--cache-dir <dir>', 'where the generated model is kept between runs (as for bench engine)')
    .option('--json', 'print the result as one JSON object')
    .action((o: GenerateCliOptions) => benchGenerate(o));
  bench
    .command('completions')
    .description(
      'editor suggestions with the bundled model: first token and a 16-token suggestion (p50/p95), tokens/s, with and without the KV cache and while a local run trains, and what they cost the run',
    )
    .option('--data <dir>', 'folder of TypeScript the prompts are cut from and the run trains on', '.')
    .option('--prompts <n>', 'prompts, each asked once per condition', positiveInt, 24)
    .option('--tokens <n>', 'new tokens per suggestion', positiveInt, 16)
    .option('--threads <n>', "the engine's onnxruntime threads (training); the completion session keeps one", positiveInt, 2)
    .option('--seconds <n>', 'seconds of training measured alone and with suggestions', positiveInt, 8)
    .option('--json', 'print the result as one JSON object')
    .action((o: CompletionsCliOptions) => benchCompletions(o));
  bench
    .command('learning')
    .description(
      'held-out loss change of local ZO training with each perturbation shape, side by side on the same data, batches and seeds (docs/results.md, "Learning faster")',
    )
    .option('--data <path>', 'dataset (as train reads it)', '.')
    .addOption(
      new Option('--arms <list>', 'shape:η pairs, comma-separated; the first is the reference of the ratios').argParser(learningArms).default(
        [
          { shape: 'isotropic', eta: TRAINING_DEFAULTS.eta },
          { shape: 'tensor-rms', eta: TRAINING_DEFAULTS.eta },
        ],
        `isotropic:${TRAINING_DEFAULTS.eta},tensor-rms:${TRAINING_DEFAULTS.eta}`,
      ),
    )
    .option('--steps <n>', 'ZO steps per arm', positiveInt, 1000)
    .option('--eval-every <n>', 'held-out evaluation every n steps', positiveInt, 250)
    .option('--eval-examples <n>', 'held-out examples per evaluation (the first n)', positiveInt, 256)
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .option('--json', 'print the result as one JSON object')
    .action((o: LearningCliOptions) => benchLearning(o));
  bench
    .command('federation')
    .description('bytes per client per round vs the paper and FedAvg, server memory with idle connections, server time (decode + aggregate) for 1,000 uploads')
    .option('--idle <n>', 'idle WebSocket connections to hold open', positiveInt, 10_000)
    .option('--rounds <n>', 'federated rounds per sampling mode', positiveInt, 6)
    .option('--clients <n>', 'clients per round', positiveInt, 4)
    .option('--params <n>', 'model size d for the FedAvg comparison', positiveInt, 124_000_000)
    .option(
      '--store <url>',
      'instead: gateways on this PostgreSQL database (a postgres:// URL without a password; each run in a schema of its own, dropped after) beside the LevelDB server',
    )
    .option('--store-password-file <file>', 'the database password (default: PGPASSWORD or ~/.pgpass)')
    .option('--gateways <list>', 'with --store: gateway counts to measure', gatewayCounts, [1, 2, 4])
    .option('--gateway-clients <n>', 'with --store: clients, every one uploading in every round', positiveInt, 48)
    .option('--gateway-rounds <n>', 'with --store: rounds per configuration', positiveInt, 20)
    .option('--gateway-idle <n>', 'with --store: idle connections held, spread over the gateways', nonNegativeInt, 4000)
    .option('--json', 'print the result as one JSON object')
    .action((o: FederationCliOptions) => (o.store ? benchGateways(o, o.store) : benchFederation(o)));
  bench
    .command('study')
    .description('FedKSeed vs FedKSeed-Pro at several K vs unrestricted ZO on two non-IID federations: held-out loss, bytes, time (docs/results.md)')
    .option('--quick', 'a few-minute smoke run: small federations, K ∈ {64, 1024}, one repeat, replicas verified every round')
    .option('--out <dir>', 'output folder: results.json, results.md, study-*.svg', '.fedkseed/study')
    .option('--images <dir>', 'also write the figures here (e.g. docs/images)')
    .option('--tasks <list>', 'tasks, comma-separated (code, fortunes)', choiceList<TaskId>(['code', 'fortunes'], 'task'))
    .option('-k, --ks <list>', 'K values, comma-separated (default 64,256,1024,4096; --quick: 64,1024)', kList)
    .option(
      '--shapes <list>',
      "perturbation shapes, comma-separated: isotropic (the paper's rows) and tensor-rms (FedKSeed-Pro at each K beside them)",
      choiceList<PerturbationShape>([...PERTURBATION_SHAPES], 'shape'),
      [...STUDY_SHAPES],
    )
    .option('--repeats <n>', 'repeats with different seeds (default: code 2, fortunes 3; --quick: 1)', positiveInt)
    .option('--rounds <n>', "rounds per federation (overrides the task's)", positiveInt)
    .option('--eta <x>', "learning rate η (overrides the tasks')", positiveNumber)
    .option('--seed <n>', 'seed of the repeats', uint32, 1)
    .option(
      '--verify <when>',
      "rebuild a replica from the server's state and compare digests: every-round or final (default: every-round with --quick, else final)",
    )
    .addOption(new Option('--code <dir>', 'code corpus of the code task').default('.', 'the current folder'))
    .option('--fortunes <dir>', 'fortune files of the fortunes task', DEFAULT_FORTUNES_DIR)
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .action((o: StudyCliOptions) => benchStudy(o));
}

/** Columns padded to their widest cell; `align` has one letter per column, 'l' or 'r' (figures). */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[], align: string): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((x, c) => (align[c] === 'r' ? x.padStart(widths[c]) : x.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

async function benchEngine(o: EngineCliOptions): Promise<void> {
  const result = await runEngineBench({
    sizes: o.sizes,
    quick: o.quick,
    threads: o.threads,
    cacheDir: o.cacheDir ?? benchCacheDir(),
    provider: o.provider,
    log: note,
  });
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
        s.steps.map((t) => [
          s.size,
          `${(s.parameters / 1e6).toFixed(1)}M`,
          String(t.batch),
          ms(t.twoForwardsMs),
          ms(t.stepMs),
          `${t.ratio.toFixed(3)}×`,
          t.target ? `≤ ${t.target.target}× ${mark(t.target.met)}` : '—',
        ]),
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
          return [
            s.size,
            String(t.batch),
            ms(b.forwards),
            ms(b.perturb),
            ms(b.perturb2),
            b.batch.toFixed(2),
            ms(b.other),
            `${(((b.perturb + b.perturb2) / t.stepMs) * 100).toFixed(1)}%`,
          ];
        }),
      ),
      'lrrrrrrr',
    ),
  );
  if (r.provider === 'webgpu') out.push('', ...webgpuReport(r));
  const k = r.kernels;
  out.push(
    '',
    `Kernels, one thread, ${(k.params / 2 ** 20).toFixed(0)}M parameters (${((k.params * 4) / 2 ** 20).toFixed(0)} MiB float32), ${k.seeds} seeds for the blocked rebuild`,
  );
  // One unit per row (a parameter, or a seed·parameter for rebuilds), named in its own column; the
  // figures are 10⁹ of those units per second and nanoseconds per unit.
  out.push(
    formatTable(
      ['pass', 'kernel', 'unit', 'G units/s', 'ns/unit'],
      k.rows.map((row) => [row.pass, row.kernel, row.unit === 'params/s' ? 'param' : 'seed·param', (row.perSecond / 1e9).toFixed(3), row.nsPerUnit.toFixed(3)]),
      'lllrr',
    ),
  );
  const t = k.targets;
  out.push(
    '',
    `perturb (WASM SIMD, resident): ${t.perturbGParamsPerSecond.reached.toFixed(3)} G params/s per core (target ≥ ${ENGINE_TARGETS.perturbGParamsPerSecond} ${mark(t.perturbGParamsPerSecond.met)}); ` +
      `${k.perturbOverMemoryPass.toFixed(1)}× the memory pass's time, ${k.wasmOverJs.toFixed(1)}× faster than JS`,
    `rebuild: ${k.seeds} seeds blocked is ${t.blockedRebuildSpeedup.reached.toFixed(2)}× single-seed passes per seed·param (target ≥ ${ENGINE_TARGETS.blockedRebuildSpeedup}× ${mark(t.blockedRebuildSpeedup.met)})`,
    `total ${r.totalSeconds.toFixed(0)} s; peak RSS ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB (process.resourceUsage().maxRSS); models in ${r.cacheDir}`,
  );
  return out.join('\n');
}

/** A size's device rows, iid then rank1. */
function deviceRows(d: DeviceSizeResult | undefined): { generator: string; t: DeviceStepResult }[] {
  if (!d) return [];
  return [...d.steps.map((t) => ({ generator: 'iid', t })), ...d.rank1.steps.map((t) => ({ generator: 'rank1', t }))];
}

/** The CPU table's rows on WebGPU, with bytes across the bus per step and the speed-up over this run's CPU step. */
function webgpuReport(r: EngineBenchResult): string[] {
  const adapter = r.adapter;
  const label = adapter?.software ? 'software Vulkan (lavapipe): correctness only, not speed' : 'hardware adapter';
  const out = [`WebGPU, weights resident on the device (adapter: ${adapter?.description ?? 'not identified'}; ${label})`];
  out.push(
    formatTable(
      ['model', 'params', 'generator', 'batch', '2 forwards ms', 'ZO step ms', 'step / 2 fwd', 'bus bytes/step', 'CPU step ms', 'speed-up'],
      r.sizes.flatMap((s) =>
        deviceRows(s.webgpu).map(({ generator, t }) => [
          s.size,
          `${(s.parameters / 1e6).toFixed(1)}M`,
          generator,
          String(t.batch),
          ms(t.twoForwardsMs),
          ms(t.stepMs),
          `${t.ratio.toFixed(3)}×`,
          String(Math.round(t.busBytesPerStep)),
          ms(t.cpuStepMs),
          `${t.speedup.toFixed(2)}×`,
        ]),
      ),
      'lrlrrrrrrr',
    ),
  );
  out.push(
    '',
    'Device passes: throughput of chained fused passes, synced; per step, a pass is timed until its run returns (queued work lands in the next forward)',
  );
  out.push(
    formatTable(
      ['model', 'generator', 'perturb2 (fused) G params/s', 'perturb ms/step', 'perturb2 ms/step', 'forwards ms/step'],
      r.sizes.flatMap((s) =>
        s.webgpu
          ? [
              { generator: 'iid', d: s.webgpu },
              { generator: 'rank1', d: s.webgpu.rank1 },
            ].map(({ generator, d }) => [
              s.size,
              generator,
              (d.perturbParamsPerSecond / 1e9).toFixed(3),
              ms(d.steps[0]?.breakdown.perturb ?? NaN),
              ms(d.steps[0]?.breakdown.perturb2 ?? NaN),
              ms(d.steps[0]?.breakdown.forwards ?? NaN),
            ])
          : [],
      ),
      'llrrrr',
    ),
  );
  out.push('', ...deviceCountsReport(r));
  return out;
}

/** Dispatches and device bytes per step, counted from the graphs (any device), and the step they predict on named GPUs. */
function deviceCountsReport(r: EngineBenchResult): string[] {
  const sized = r.sizes.flatMap((s) => (s.webgpu ? [{ size: s.size, c: s.webgpu.counts }] : []));
  const out = ['Device counts per ZO step, from the graphs built (hold on any device; not timed). Bytes: device memory read + written per parameter'];
  out.push(
    formatTable(
      [
        'model',
        'perturb dispatches',
        'perturb B/param',
        'rank1 perturb dispatches',
        'B/param',
        'iid hash every pass: dispatches',
        'B/param',
        'forward nodes',
        'forward dispatches',
        'forward weight B/param',
        'step dispatches iid / rank1',
        'step B/param iid / rank1',
        'pass peak, × weights iid / rank1',
      ],
      sized.map(({ size, c }) => [
        size,
        String(c.perturbation.cachedZ.dispatches),
        c.perturbation.cachedZ.bytesPerParameter.toFixed(0),
        String(c.perturbation.rank1.dispatches),
        c.perturbation.rank1.bytesPerParameter.toFixed(0),
        String(c.perturbation.hashEveryPass.dispatches),
        c.perturbation.hashEveryPass.bytesPerParameter.toFixed(0),
        String(c.forward.builtNodes),
        String(c.forward.dispatches),
        c.forward.weightBytesPerParameter.toFixed(1),
        `${c.perStep.iid.dispatches} / ${c.perStep.rank1.dispatches}`,
        `${c.perStep.iid.bytesPerParameter.toFixed(0)} / ${c.perStep.rank1.bytesPerParameter.toFixed(0)}`,
        `${times(c.perturbation.cachedZ.peakOverWeights)} / ${times(c.perturbation.rank1.peakOverWeights)}`,
      ]),
      'lrrrrrrrrrrrr',
    ),
  );
  out.push('', 'Predicted step on named GPUs from those counts (peak bandwidth and FP32 rate, 5 µs per launch: lower bounds; trainer/device/gpu-model.ts)');
  out.push(
    formatTable(
      ['model', 'generator', 'batch', 'GPU', 'perturbation ms', 'bound', 'two forwards ms', 'bound', 'step ms'],
      sized.flatMap(({ size, c }) =>
        c.predictions.map((p) => [size, p.generator, String(p.batch), p.gpu, ...predicted(p.perturbation), ...predicted(p.forwards), p.stepMs.toFixed(2)]),
      ),
      'llrlrlrlr',
    ),
  );
  out.push(
    '',
    "Two forwards, float32 against float16 products (--forward-precision float16; FP16 at the shader cores' rate), predicted the same way. Counted float16 forward: " +
      sized
        .map(({ size, c }) => `${size} ${c.forwardFloat16.dispatches} launches, ${c.forwardFloat16.weightBytesPerParameter.toFixed(1)} weight B/param`)
        .join('; '),
  );
  out.push(
    formatTable(
      ['model', 'batch', 'GPU', 'float32 ms', 'bound', 'float16 ms', 'bound', 'float16 ÷ float32'],
      sized.flatMap(({ size, c }) =>
        c.forwardPredictions.map((p) => [
          size,
          String(p.batch),
          p.gpu,
          ...predicted(p.float32),
          ...predicted(p.float16),
          `${(p.float16.ms / p.float32.ms).toFixed(2)}×`,
        ]),
      ),
      'lrlrlrlr',
    ),
  );
  return out;
}

function deviceMemoryReport(preset: string, rows: readonly DeviceMemoryRow[]): string {
  const w = (bytes: number, row: DeviceMemoryRow): string => `${(bytes / row.weightBytes).toFixed(2)}×`;
  return [
    `${preset}: device memory of a step's passes, in weights (${((rows[0]?.weightBytes ?? 0) / 2 ** 20).toFixed(0)} MiB of float32)`,
    formatTable(
      ['passes', "counted: a run's peak", 'process high-water: after the upload', 'after the passes', 'added by the passes'],
      rows.map((r) => [r.mode, times(r.countedPeak), w(r.afterUploadBytes, r), w(r.afterPassesBytes, r), w(r.afterPassesBytes - r.afterUploadBytes, r)]),
      'lrrrr',
    ),
    `Modes: ${DEVICE_PASS_MODES.join(', ')}. "After the upload" holds the host's replica, the runtime and the weights on the device; "added by the passes" is what the runs hold beyond them. ` +
      `On lavapipe the device's buffers are the process's memory; on a GPU the process figures are host memory only and the counts are what to read.`,
  ].join('\n');
}

function benchRounds(o: RoundsCliOptions): void {
  if (o.seedsPerRound > o.k) throw new InvalidArgumentError(`--seeds-per-round ${o.seedsPerRound} exceeds --k ${o.k}`);
  const generators = o.generator === 'both' ? undefined : [o.generator];
  const result = runRoundsBench({
    params: o.params,
    rounds: o.rounds,
    seedsPerRound: o.seedsPerRound,
    k: o.k,
    spillDir: o.spillDir,
    generators,
    modes: o.sums,
    parallel: o.parallel,
    log: note,
  });
  if (o.json) emitJson({ bench: 'rounds', ...result });
  else process.stdout.write(`${roundsReport(result)}\n`);
}

/** Minutes or hours above a minute, else seconds. */
const duration = (s: number): string => (s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`);

export function roundsReport(r: RoundsBenchResult): string {
  const header = ['round', 'applied seeds', ...SUMS_MODES.map((m) => `${m} ms`), 'coefficients ÷ file', ...SUMS_MODES.map((m) => `reset ${m} ms`), 'same bits'];
  const out: string[] = [];
  for (const g of r.generators) {
    const rows = g.rows.map((x) => [
      String(x.round),
      String(x.appliedSeeds),
      ...SUMS_MODES.map((m) => x.applyMs[m]?.toFixed(0) ?? '—'),
      Number.isFinite(x.coefficientsOverFile) ? `${x.coefficientsOverFile.toFixed(2)}×` : '—',
      ...SUMS_MODES.map((m) => x.resetMs[m]?.toFixed(0) ?? '—'),
      x.sameBits ? 'yes' : 'NO',
    ]);
    const p = g.projection;
    const t = g.rates;
    out.push(
      `Generator ${g.generator}: a round's coefficient change (${r.seedsPerRound} seeds) by how S is kept, ${(r.params / 1e6).toFixed(1)}M parameters ` +
        `(matrices of 2,048 columns), ${r.kernel}, ${r.parallel ? 'split over two threads' : 'one thread'}; same sets side by side`,
      formatTable(header, rows, 'l' + 'r'.repeat(header.length - 1)),
      `Measured rates: accumulate ${(t.seedParamsPerSecond / 1e9).toFixed(2)} G seed·params/s, materialise ${(t.materializeParamsPerSecond / 1e9).toFixed(2)} G params/s, ` +
        `S file write ${t.writeMBps.toFixed(0)} MB/s, read ${t.readMBps.toFixed(0)} MB/s (256 MiB, through the page cache), disk ${t.diskMBps.toFixed(0)} MB/s (written with fdatasync)`,
      `Projection (from those rates, not measured): ${(p.params / 1e6).toFixed(1)}M parameters, ${p.appliedSeeds} seeds applied, a change of ${p.seedsPerRound}, one thread: ` +
        `held ${duration(p.seconds.held)}, file ${duration(p.seconds.file)}, coefficients ${duration(p.seconds.coefficients)} (coefficients ÷ file ${p.coefficientsOverFile.toFixed(1)}×); ` +
        `with the S file at the disk's rate (past the page cache) file ${duration(p.fileAtDiskSeconds)} (${p.coefficientsOverFileAtDisk.toFixed(1)}×)`,
      '',
    );
  }
  const iid = r.generators.find((g) => g.generator === 'iid');
  const rank1 = r.generators.find((g) => g.generator === 'rank1');
  if (iid && rank1) {
    const ratio = (m: SumsMode): string => `${m} ${(iid.projection.seconds[m] / rank1.projection.seconds[m]).toFixed(1)}×`;
    out.push(
      `iid ÷ rank1, measured side by side: accumulate rate ${(rank1.rates.seedParamsPerSecond / iid.rates.seedParamsPerSecond).toFixed(1)}× faster under rank1; ` +
        `projected change ${SUMS_MODES.map(ratio).join(', ')}`,
    );
  }
  return out.join('\n').trimEnd();
}

async function benchMemory(o: MemoryCliOptions): Promise<void> {
  const result = await runMemoryBench({
    sizes: o.sizes,
    batches: o.batches,
    maxMemory: o.maxMemory,
    steps: o.steps,
    rounds: o.rounds,
    timedSteps: o.timedSteps,
    threads: o.threads,
    cacheDir: o.cacheDir ?? benchCacheDir(),
    log: note,
  });
  if (o.json) emitJson({ bench: 'memory', ...result });
  else process.stdout.write(`${memoryReport(result)}\n`);
}

const mib = (bytes: number): string => Math.round(bytes / 2 ** 20).toLocaleString('en-US');
const PROCESS_NAMES = { inference: 'inference session', train: 'local training', client: 'federation client' } as const;

export function memoryReport(r: MemoryBenchResult): string {
  const training =
    r.timedSteps > 0
      ? `local training: ${r.timedSteps + 3} ZO steps, ${r.timedSteps} timed against their own pair of forwards`
      : `local training: ${r.steps} ZO steps`;
  const out = [
    `Peak RSS (MiB) of each process, seq ${r.seq}, ${r.threads} onnxruntime threads; ${training}; federation client: ${r.rounds} rounds of a coefficient change and ${r.steps} steps`,
  ];
  out.push(
    formatTable(
      [
        'model',
        'params',
        'batch',
        'process',
        'peak RSS',
        '÷ inference',
        'budget',
        'weights',
        'w0',
        'S',
        'z store',
        'onnxruntime + process',
        'S kept as',
        'z store share',
        'step ÷ 2 fwd',
      ],
      r.rows.map((x) => {
        const b = x.buffers;
        if (x.error)
          return [
            x.size,
            `${(x.parameters / 1e6).toFixed(1)}M`,
            String(x.batch),
            PROCESS_NAMES[x.kind],
            'failed',
            '—',
            '—',
            '—',
            '—',
            '—',
            '—',
            '—',
            '—',
            '—',
            '—',
          ];
        return [
          x.size,
          `${(x.parameters / 1e6).toFixed(1)}M`,
          String(x.batch),
          PROCESS_NAMES[x.kind],
          mib(x.peakRssBytes),
          x.kind === 'inference' ? '—' : `${x.ratio.toFixed(3)}×`,
          x.plan ? mib(x.plan.budgetBytes) : '—',
          mib(b ? b.weights : x.weightBytes),
          b ? mib(b.base) : '—',
          b ? mib(b.sums) : '—',
          b ? mib(b.zStore) : '—',
          mib(x.runtimeBytes),
          x.plan ? (x.plan.sums === 'held' ? 'float64' : x.plan.sums === 'file' ? 'float64 file' : 'coefficients') : '—',
          x.plan ? `${Math.round(x.plan.zStore * 100)}%` : '—',
          x.timing ? `${x.timing.ratio.toFixed(3)}×` : '—',
        ];
      }),
      'lrrlrrrrrrrrllr',
    ),
  );
  for (const s of r.skipped) out.push(`${s.size}: skipped, ${s.reason}`);
  for (const x of r.rows) if (x.error) out.push(`${x.size} batch ${x.batch} ${PROCESS_NAMES[x.kind]} failed: ${x.error}`);
  const t = r.target;
  if (t.worst !== null)
    out.push(
      '',
      `training at ${t.size}: ${Number.isFinite(t.worst) ? `at most ${t.worst.toFixed(3)}×` : 'a process failed; not measured'} the inference session's peak (target ≤ ${t.ratio}× ${mark(t.met === true)})`,
    );
  out.push(`weights of the inference session: the model's float32 weights, held by onnxruntime; total ${r.totalSeconds.toFixed(0)} s; models in ${r.cacheDir}`);
  return out.join('\n');
}

async function benchGenerate(o: GenerateCliOptions): Promise<void> {
  const result = await runGenerateBench({
    newTokens: o.newTokens,
    promptTokens: o.prompt,
    batch: o.batch,
    repeats: o.repeats,
    threads: o.threads,
    cacheDir: o.cacheDir,
    log: note,
  });
  if (o.json) emitJson({ bench: 'generate', ...result });
  else process.stdout.write(`${generateReport(result)}\n`);
}

export function generateReport(r: GenerateBenchResult): string {
  const head = `Greedy decoding, ${r.preset} with past key values (${(r.parameters / 1e6).toFixed(1)}M parameters), prompt ${r.promptTokens} tokens, ${r.threads} threads`;
  const table = formatTable(
    ['new tokens', 'batch', 'cached tok/s', 'no cache tok/s', 'speed-up', 'cached ms', 'no cache ms', 'same tokens'],
    r.rows.map((x) => [
      String(x.newTokens),
      String(x.batch),
      x.cachedTokensPerSecond.toFixed(1),
      x.uncachedTokensPerSecond.toFixed(1),
      `${x.speedup.toFixed(2)}×`,
      x.cachedMs.toFixed(0),
      x.uncachedMs.toFixed(0),
      x.sameTokens ? 'yes' : 'NO',
    ]),
    'rrrrrrrl',
  );
  return `${head}\n${table}`;
}

async function benchCompletions(o: CompletionsCliOptions): Promise<void> {
  const result = await runCompletionsBench({
    data: resolve(o.data),
    prompts: o.prompts,
    tokens: o.tokens,
    threads: o.threads,
    trainingSeconds: o.seconds,
    log: note,
  });
  if (o.json) emitJson({ bench: 'completions', ...result });
  else process.stdout.write(`${completionsReport(result)}\n`);
}

export function completionsReport(r: CompletionsBenchResult): string {
  const ms = (x: number) => x.toFixed(1);
  const head = `Suggestions of ${r.tokens} tokens, ${r.prompts} prompts, ${r.model.split(/[\\/]/).slice(-2).join('/')}; engine ${r.engineThreads} threads, completion session ${r.completionThreads}`;
  const table = formatTable(
    ['condition', 'decoder', 'first token p50', 'p95', 'suggestion p50', 'p95', 'tokens/s p50', 'tokens'],
    r.rows.map((x) => [
      x.condition,
      x.decoder,
      `${ms(x.firstTokenP50)} ms`,
      `${ms(x.firstTokenP95)} ms`,
      `${ms(x.suggestionP50)} ms`,
      `${ms(x.suggestionP95)} ms`,
      x.tokensPerSecondP50.toFixed(0),
      x.meanTokens.toFixed(1),
    ]),
    'llrrrrrr',
  );
  const cached = r.rows[0];
  const uncached = r.rows[1];
  const t = r.training;
  return [
    head,
    table,
    `KV cache vs none: suggestion p50 ${(uncached.suggestionP50 / cached.suggestionP50).toFixed(2)}× faster`,
    `training: ${t.alone.toFixed(2)} steps/s alone, ${t.withCompletions.toFixed(2)} steps/s while ${t.suggestions} suggestions were asked for back to back (${(t.withCompletions / t.alone).toFixed(2)}×; ${t.snapshots} copies of the weights taken between steps)`,
  ].join('\n');
}

async function benchFederation(o: FederationCliOptions): Promise<void> {
  note(
    `federation bench: ${o.rounds} rounds × ${o.clients} clients per sampling mode, 1,000 uploads decoded and aggregated, ${o.idle.toLocaleString()} idle connections…`,
  );
  // Its own progress lines repeat the table's figures: keep them for --json runs only (on stderr).
  const report = await runFederationBench({
    idleConnections: o.idle,
    rounds: o.rounds,
    clients: o.clients,
    paramCount: o.params,
    log: o.json ? note : () => {},
  });
  if (o.json) emitJson({ bench: 'federation', ...report });
  else process.stdout.write(`${federationReport(report)}\n`);
}

async function benchGateways(o: FederationCliOptions, storeUrl: string): Promise<void> {
  if (!isPostgresUrl(storeUrl)) throw new InvalidArgumentError('--store must be a postgres:// URL');
  const password = o.storePasswordFile ? readFileSync(o.storePasswordFile, 'utf8').split(/\r?\n/)[0] : undefined;
  note(
    `gateway bench on ${redactStoreUrl(storeUrl)}: LevelDB, then ${o.gateways.join(', ')} gateway(s); ${o.gatewayClients} clients × ${o.gatewayRounds} rounds each, ${o.gatewayIdle.toLocaleString()} idle connections…`,
  );
  const report = await runGatewayBench({
    storeUrl,
    password,
    gateways: o.gateways,
    clients: o.gatewayClients,
    rounds: o.gatewayRounds,
    idle: o.gatewayIdle,
    log: note,
  });
  if (o.json) emitJson({ bench: 'federation-gateways', ...report });
  else process.stdout.write(`${gatewayReport(report)}\n`);
}

export function gatewayReport(r: GatewayBenchReport): string {
  const base = r.rows[0];
  const table = formatTable(
    ['store', 'gateways', 'rounds/s', 'uploads aggregated/s', 'vs LevelDB', 'idle connections', 'RSS (all gateways)'],
    r.rows.map((x) => [
      x.store,
      String(x.gateways),
      x.roundsPerSecond.toFixed(2),
      x.uploadsPerSecond.toFixed(0),
      `${(x.uploadsPerSecond / base.uploadsPerSecond).toFixed(2)}×`,
      x.idleConnections.toLocaleString(),
      `${(x.rssBytes / 2 ** 20).toFixed(0)} MiB`,
    ]),
    'lrrrrrr',
  );
  const [level, shared] = [r.commit.find((c) => c.store === 'LevelDB'), r.commit.find((c) => c.store === 'PostgreSQL')];
  const commit =
    level && shared
      ? `One commit at K = ${level.k} (state + record, ${level.commits} in a row): LevelDB p50 ${level.p50Ms.toFixed(2)} ms (p95 ${level.p95Ms.toFixed(2)}), PostgreSQL p50 ${shared.p50Ms.toFixed(2)} ms (p95 ${shared.p95Ms.toFixed(2)}): ${(shared.p50Ms / level.p50Ms).toFixed(2)}×`
      : '';
  return [
    `Gateways on PostgreSQL beside the LevelDB server (${base.clients} clients, each uploading τ = 200 pairs at K = 4096 every round, ${base.rounds} rounds)`,
    table,
    commit,
  ].join('\n');
}

export function federationReport(r: FederationBenchReport): string {
  const a = r.aggregation;
  const out = ['Bytes per client per round (K = 4096, τ = 200; up + down, framing included)'];
  out.push(
    formatTable(
      ['sampling', 'mean', 'max', 'paper 17,988 B ÷ mean', 'FedAvg ÷ mean'],
      r.bytes.map((b) => [
        b.sampling,
        `${b.meanPerClientRound.toLocaleString()} B`,
        `${b.maxPerClientRound.toLocaleString()} B`,
        `${b.vsPaper.toFixed(2)}×`,
        `${b.vsFedAvg.toExponential(2)}×`,
      ]),
      'lrrrr',
    ),
    `FedAvg at this d: ${(r.fedAvgPerClientRound / 2 ** 20).toFixed(0)} MiB per client per round`,
    '',
    `Server time for ${a.uploads.toLocaleString()} uploads of 200 pairs (medians of ${a.passes} passes): decode ${a.decodeMs.toFixed(1)} ms + aggregate, quantize, importance ${a.aggregateMs.toFixed(1)} ms = ${a.totalMs.toFixed(1)} ms (target < ${a.targetMs} ms for the sum ${mark(a.met)}; first pass ${a.firstPassTotalMs.toFixed(1)} ms)`,
    `${r.idle.connections.toLocaleString()} idle connections: server RSS ${(r.idle.serverRssBytes / 2 ** 20).toFixed(0)} MiB (target < 1024 MiB ${mark(r.idle.serverRssBytes < 2 ** 30)})${r.idle.refused ? `; refused: ${r.idle.refused}` : ''}`,
  );
  return out.join('\n');
}

async function benchStudy(o: StudyCliOptions): Promise<void> {
  const quick = Boolean(o.quick);
  if (o.verify !== undefined && o.verify !== 'every-round' && o.verify !== 'final')
    throw new InvalidArgumentError(`--verify must be every-round or final, got "${o.verify}"`);
  const tasks = buildTasks(quick, o.tasks).map((t) => ({ ...t, rounds: o.rounds ?? t.rounds, eta: o.eta ?? t.eta, repeats: o.repeats ?? t.repeats }));
  const config: StudyConfig = {
    quick,
    tasks,
    methods: methodsFor(o.ks ?? (quick ? QUICK_KS : FULL_KS), o.shapes),
    seed: o.seed,
    verify: (o.verify as StudyConfig['verify'] | undefined) ?? (quick ? 'every-round' : 'final'),
    threads: o.threads ?? availableParallelism(),
  };
  const abort = new AbortController();
  const onSignal = () => {
    note('stopping after the current step; results so far are being written (Ctrl-C again to force)…');
    abort.abort();
    process.once('SIGINT', () => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const runs = tasks.reduce((n, t) => n + config.methods.length * t.repeats, 0);
    note(
      `study: ${tasks.map((t) => `${t.id} (${t.repeats} repeat${t.repeats === 1 ? '' : 's'})`).join(' + ')}, ${config.methods.length} methods = ${runs} federations → ${o.out}`,
    );
    const results = await runStudy({
      config,
      outDir: resolve(o.out),
      imagesDir: o.images ? resolve(o.images) : undefined,
      sources: { codeRoot: resolve(o.code), fortunesDir: o.fortunes },
      signal: abort.signal,
      log: note,
      command: ['fedkseed', ...process.argv.slice(2)].join(' '),
    });
    process.stdout.write(
      `${results.table}\n\n${results.status}: ${results.runs.length} federations in ${results.seconds.toFixed(0)} s; ${results.files.join(', ')} in ${o.out}\n`,
    );
    if (results.status === 'interrupted') process.exitCode = 130;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** A predicted part's table cells: its milliseconds and what bounds it. */
function predicted(part: PartPrediction): [string, string] {
  return [part.ms.toFixed(2), part.bound];
}
