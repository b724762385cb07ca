import { join, relative } from 'node:path';
import { type Command, Option } from 'commander';
import { formatBytes, formatRatio } from '../../protocol/format';
import type { RoundReport } from '../../simulate/report';
import { runSimulation, type SimulationEvent } from '../../simulate/run-simulation';
import type { SplitMode } from '../../simulate/shards';
import { DATA_FORMATS, type DataFormat, readAllRecords } from '../../trainer/data/readers';
import { describeNoExamples } from '../../trainer/data/empty-dataset';
import { CliError } from '../errors';
import { formatProblem } from '../../trainer/data/problems';
import { GENERATORS, PERTURBATION_SHAPES, type Generator, type PerturbationShape, type SamplingMode, type Weighting } from '../../protocol';
import {
  addModelOptions,
  deadlineSeconds,
  existingPath,
  fraction,
  hyperparameterArg,
  type ModelCliOptions,
  positiveInt,
  positiveNumber,
  seedCount,
  uint32,
} from '../options';
import type { SimulateEvent } from '../../contracts/cli-events';
import { SIMULATION_DEFAULTS, TRAINING_DEFAULTS } from '../../contracts/defaults';
import { emitJson, fixed, note } from '../output';
import { addMemoryOption, type MemoryCliOptions } from '../memory-option';
import { ignoreScratchFolder } from '../../contracts/node/scratch-folder';
import { suggest } from '../invocation';

interface SimulateOptions extends ModelCliOptions, MemoryCliOptions {
  data: string;
  format?: DataFormat;
  include?: string[];
  clients: number;
  clientsPerRound?: number;
  rounds: number;
  tau: number;
  k: number;
  seed: number;
  epsilon: number;
  eta: number;
  shape: PerturbationShape;
  generator: Generator;
  batchSize: number;
  seqLen: number;
  sampling: SamplingMode;
  weighting: Weighting;
  split: SplitMode;
  alpha: number;
  groupsPerClient?: number;
  heldOut: number;
  evalExamples: number;
  deadline: number;
  out?: string;
  json?: boolean;
}

export function registerSimulate(program: Command): void {
  const cmd = program
    .command('simulate')
    .description(
      'A whole federation on this machine: a local server, N client processes on non-IID shards of the data, held-out loss of the global model after every round, and a report',
    );
  addMemoryOption(cmd, 'of each client process and of the evaluator');
  addModelOptions(cmd)
    .addOption(
      new Option('--data <path>', 'dataset file or folder').argParser(existingPath('--data')).default('.', 'the current folder, its source code files'),
    )
    .addOption(new Option('--format <format>', 'dataset format (default: detected)').choices([...DATA_FORMATS]))
    .option('--include <glob...>', 'for folders: globs of files to read (default: source code files, or every text file when there is no code)')
    .option('--clients <n>', 'client processes', positiveInt, SIMULATION_DEFAULTS.clients)
    .option('--clients-per-round <n>', 'clients sampled per round (default: all)', hyperparameterArg('clientsPerRound'))
    .option('--rounds <n>', 'federation rounds', hyperparameterArg('rounds'), SIMULATION_DEFAULTS.rounds)
    .option('--tau <n>', 'local ZO steps per client per round (τ)', hyperparameterArg('tau'), SIMULATION_DEFAULTS.tau)
    .option('-k, --k <n>', 'number of shared seeds K (at most 65,536)', seedCount, SIMULATION_DEFAULTS.k)
    .option('--seed <n>', 'federation seed (perturbation directions, client split)', uint32, TRAINING_DEFAULTS.federationSeed)
    .option('--epsilon <x>', 'perturbation scale ε', hyperparameterArg('epsilon'), TRAINING_DEFAULTS.epsilon)
    .option('--eta <x>', 'learning rate η', hyperparameterArg('eta'), SIMULATION_DEFAULTS.eta)
    .addOption(
      new Option('--shape <name>', "how z is scaled tensor by tensor: tensor-rms (by each tensor's scale) or isotropic (the paper's)")
        .choices(PERTURBATION_SHAPES)
        .default(SIMULATION_DEFAULTS.shape),
    )
    .addOption(
      new Option(
        '--generator <name>',
        "how z is generated, for every client: iid (every parameter hashed, the paper's) or rank1 (each matrix's z an outer product u·vᵀ: rounds apply faster at scale)",
      )
        .choices(GENERATORS)
        .default(SIMULATION_DEFAULTS.generator),
    )
    .option('--batch-size <n>', 'examples per local step', hyperparameterArg('batchSize'), TRAINING_DEFAULTS.batchSize)
    .option('--seq-len <n>', 'tokens per example window', hyperparameterArg('seqLen'), SIMULATION_DEFAULTS.seqLen)
    .addOption(
      new Option('--sampling <mode>', 'seed sampling: uniform (FedKSeed) or pro (FedKSeed-Pro)')
        .choices(['uniform', 'pro'])
        .default(SIMULATION_DEFAULTS.sampling),
    )
    .addOption(
      new Option('--weighting <mode>', 'aggregation weights: by examples or equal').choices(['examples', 'equal']).default(SIMULATION_DEFAULTS.weighting),
    )
    .addOption(
      new Option(
        '--split <mode>',
        'how data is dealt to clients: whole groups (top-level folders, tasks) or Dirichlet label skew; auto: Dirichlet for labelled instruction data',
      )
        .choices(['auto', 'group', 'dirichlet'])
        .default('auto'),
    )
    .option('--alpha <x>', 'Dirichlet concentration (0.5 strong skew, 5.0 mild)', positiveNumber, SIMULATION_DEFAULTS.alpha)
    .option(
      '--groups-per-client <n>',
      'group split: groups per client (default: every group, dealt evenly; fewer than all are left out, and named in the output)',
      positiveInt,
    )
    .option('--held-out <fraction>', 'share of the data held out from every client to evaluate the global model', fraction, TRAINING_DEFAULTS.heldOutFraction)
    .option('--eval-examples <n>', 'held-out examples per evaluation', positiveInt, TRAINING_DEFAULTS.evalExamples)
    .option('--deadline <seconds>', 'time a sampled client has to upload (1 ms to 24.8 days)', deadlineSeconds, SIMULATION_DEFAULTS.deadlineSeconds)
    .option('--out <dir>', 'report folder (default: .fedkseed/runs/<timestamp>)')
    .option('--json', 'print progress as JSON lines')
    .action((o: SimulateOptions) => runSimulate(o));
}

function timestamp(d = new Date()): string {
  return d.toISOString().replace(/\..*$/, '').replace(/:/g, '-');
}

async function runSimulate(o: SimulateOptions): Promise<void> {
  const outDir = o.out ?? join('.fedkseed', 'runs', timestamp());
  const abort = new AbortController();
  const onSignal = () => {
    note('stopping the clients and the server; the report will cover the rounds committed so far (Ctrl-C again to force)…');
    abort.abort();
    process.once('SIGINT', () => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const progress = new Progress(o);
  try {
    const { report, files } = await runSimulation(
      {
        data: o.data,
        format: o.format,
        include: o.include,
        model: o.model,
        variant: o.variant,
        tokenizer: o.tokenizer,
        trainable: o.trainable,
        freeze: o.freeze,
        kernel: o.kernel,
        provider: o.provider,
        forwardPrecision: o.forwardPrecision,
        clients: o.clients,
        clientsPerRound: o.clientsPerRound,
        rounds: o.rounds,
        tau: o.tau,
        k: o.k,
        federationSeed: o.seed,
        epsilon: o.epsilon,
        eta: o.eta,
        shape: o.shape,
        generator: o.generator,
        batchSize: o.batchSize,
        seqLen: o.seqLen,
        sampling: o.sampling,
        weighting: o.weighting,
        split: o.split,
        alpha: o.alpha,
        groupsPerClient: o.groupsPerClient,
        heldOut: o.heldOut,
        evalExamples: o.evalExamples,
        deadlineMs: Math.round(o.deadline * 1000),
        outDir,
        threads: o.threads ?? 1,
        maxMemory: o.maxMemory,
        signal: abort.signal,
      },
      (e) => progress.on(e),
    ).catch(async (err: unknown) => {
      throw (await explainNoData(o, err)) ?? err;
    });
    ignoreScratchFolder(outDir);
    progress.clear();
    const first = report.rounds[0]?.heldOutLoss ?? null;
    const last = report.rounds.length > 1 ? report.rounds[report.rounds.length - 1].heldOutLoss : null;
    if (o.json) {
      emitJson({
        event: 'done',
        status: report.status,
        error: report.error,
        rounds: report.totals.committedRounds,
        heldOutBefore: first,
        heldOutAfter: last,
        bytes: report.totals.bytes,
        fedAvgBytes: report.totals.fedAvgBytes,
        replicasIdentical: report.totals.replicasIdentical,
        report: files.json,
        html: files.html,
        checkpoint: report.checkpoint,
      } satisfies SimulateEvent);
    } else {
      const ratio = report.totals.bytes > 0 ? formatRatio(report.totals.fedAvgBytes / report.totals.bytes) : '—';
      note(
        `${report.status}: ${report.totals.committedRounds}/${report.config.federation.rounds} rounds in ${report.seconds.toFixed(1)} s · held-out loss ${first === null ? '—' : fixed(first)} → ${last === null ? '—' : fixed(last)} · ${formatBytes(report.totals.bytes)} on the wire (FedAvg: ${formatBytes(report.totals.fedAvgBytes)}, ${ratio} more) · replicas identical: ${report.totals.replicasIdentical === null ? '—' : report.totals.replicasIdentical ? 'yes' : 'NO'}`,
      );
      if (report.error) note(`error: ${report.error}`);
      if (report.checkpoint)
        note(`export the model: ${suggest(`export --checkpoint ${relative(process.cwd(), report.checkpoint) || report.checkpoint} --out model.onnx`)}`);
      process.stdout.write(`report: ${relative(process.cwd(), files.html) || files.html}\n`);
    }
    if (report.status === 'interrupted') process.exitCode = 130;
    else if (report.status === 'failed') process.exitCode = 1;
  } finally {
    progress.clear();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** For data that holds no records at all: the one error that lists what was skipped and why. */
async function explainNoData(o: SimulateOptions, err: unknown): Promise<CliError | null> {
  if (!(err instanceof Error) || !err.message.startsWith(`no training examples in ${o.data}`)) return null;
  const read = await readAllRecords(o.data, { format: o.format, include: o.include }).catch(() => null);
  if (!read || read.records.length > 0) return null;
  return new CliError(await describeNoExamples(o.data, read.skipped, read.problems.length, { include: o.include }));
}

/** One line per round, plus (on a terminal) a live line with every client's step. */
class Progress {
  private readonly steps = new Map<string, string>();
  private readonly live = process.stderr.isTTY === true;
  private shown = false;

  constructor(private readonly o: SimulateOptions) {}

  on(e: SimulationEvent): void {
    if (this.o.json) return this.json(e);
    switch (e.type) {
      case 'data-problem':
        return this.say(`warning: ${formatProblem(e.problem)}`);
      case 'prepared':
        this.say(
          `${e.parameters.toLocaleString()} parameters · ${e.train} training / ${e.heldOut} held-out windows (${e.evalExamples} evaluated) · split: ${e.split}`,
        );
        if (e.note) this.say(`note: ${e.note}`);
        for (const c of e.clients)
          this.say(
            `  ${c.id}: ${c.examples} examples from ${c.groups.length > 4 ? `${c.groups.slice(0, 4).join(', ')} and ${c.groups.length - 4} more` : c.groups.join(', ')}`,
          );
        return;
      case 'server':
        return this.say(
          `server ${e.url} · ${this.o.clients} clients · ${this.o.rounds} rounds of τ = ${this.o.tau} · K = ${this.o.k} · ${this.o.sampling} · shape ${this.o.shape}${this.o.generator === 'iid' ? '' : ` · generator ${this.o.generator}`}`,
        );
      case 'round':
        return this.say(roundLine(e.report, e.rounds));
      case 'client':
        if (e.event.event === 'step' && this.live) {
          this.steps.set(e.id, `${e.id} r${e.event.round} ${e.event.step}/${e.event.steps}`);
          this.draw();
        }
        if (e.event.event === 'disconnected') this.say(`${e.id}: disconnected (${e.event.reason || e.event.code}), retrying`);
        if (e.event.event === 'server-error') this.say(`${e.id}: server says ${e.event.name}: ${e.event.message}`);
        return;
      case 'client-exit':
        this.steps.delete(e.id);
        if (e.exit.code !== 0 && e.exit.code !== 130)
          this.say(`${e.id} exited with ${e.exit.code ?? e.exit.signal}${e.exit.stderrTail ? `:\n${e.exit.stderrTail}` : ''}`);
        return;
    }
  }

  private json(e: SimulationEvent): void {
    const line = simulateLine(e);
    if (line) emitJson(line);
  }

  private say(line: string): void {
    this.clear();
    note(line);
    this.draw();
  }

  private draw(): void {
    if (!this.live || this.steps.size === 0) return;
    process.stderr.write(`\r\x1b[K  ${[...this.steps.values()].join(' · ')}`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
    this.shown = false;
  }
}

/** The --json line of a simulation event (none for a client's steps). */
function simulateLine(e: SimulationEvent): SimulateEvent | null {
  switch (e.type) {
    case 'data-problem':
      return { event: 'data-problem', file: e.problem.file, line: e.problem.line, message: e.problem.message };
    case 'prepared':
      return {
        event: 'prepared',
        parameters: e.parameters,
        train: e.train,
        heldOut: e.heldOut,
        evalExamples: e.evalExamples,
        split: e.split,
        note: e.note ?? null,
        clients: e.clients,
        unassigned: e.unassigned,
      };
    case 'server':
      return { event: 'server', url: e.url };
    case 'round':
      return { event: 'round', ...e.report };
    case 'client':
      return e.event.event === 'step' ? null : { ...e.event, event: 'client', id: e.id, clientEvent: e.event.event };
    case 'client-exit':
      return { event: 'client-exit', id: e.id, code: e.exit.code, signal: e.exit.signal };
  }
}

function roundLine(r: RoundReport, rounds: number): string {
  const loss = r.heldOutLoss === null ? '—' : fixed(r.heldOutLoss);
  if (r.round === 0) return `round ${String(0).padStart(String(rounds).length)}/${rounds}  held-out loss ${loss}  (base model)`;
  const n = Math.max(1, r.participants.length);
  const ratio = r.cumulativeBytes > 0 ? formatRatio(r.cumulativeFedAvgBytes / r.cumulativeBytes) : '—';
  return (
    `round ${String(r.round).padStart(String(rounds).length)}/${rounds}  held-out loss ${loss}  ` +
    `per client ↑${formatBytes(r.bytes.up / n)} ↓${formatBytes(r.bytes.down / n)}  ` +
    `total ${formatBytes(r.cumulativeBytes)} vs FedAvg ${formatBytes(r.cumulativeFedAvgBytes)} (${ratio} smaller)  ${r.seconds.toFixed(1)} s`
  );
}
