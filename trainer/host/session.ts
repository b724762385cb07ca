// What the trainer host does for each request: owns the engine (one per process, reopened when the
// engine settings change) and runs at most one long job at a time, which `stop` or a JSON-RPC
// cancellation aborts. It knows what the engine's weights are (the base model, a local run's, a
// federation's replica) and which job it runs, and says so in its status as they change (the extension
// reads them there) and with every result; runs are checkpointed as they progress and can be resumed or
// reloaded from their checkpoints.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadDataset, type Dataset } from '../data/dataset';
import { MODEL_FOLDER_REASON } from '../data/formats/text-files';
import { openEngine, pullWorkingWeights, type Engine } from '../engine';
import { evaluateLoss } from '../eval/loss';
import { exportModel } from '../model';
import { resolveModelPaths } from '../paths';
import { applyCheckpoint, loadCheckpoint, federationOrigin, makeCheckpoint, saveCheckpoint, type Checkpoint } from '../zo/checkpoint';
import type { FederationConfig } from '../../protocol';
import { createEngineTrainer } from './engine-trainer-factory';
import { engineOptions } from './engine-options';
import { runFederation } from './federation-run';
import { trainLocally } from './local-training';
import type { HostNotifier } from './notifier';
import {
  baseWeights,
  describeWeights,
  heldOutChange,
  type DataSpec,
  type EvaluateParams,
  type EvaluateResult,
  type ExportModelParams,
  type ExportModelResult,
  type FederationResult,
  type InitializeParams,
  type InitializeResult,
  type JoinFederationParams,
  type LoadCheckpointParams,
  type StartTrainingParams,
  type TrainerJob,
  type TrainingResult,
  type WeightsResult,
  type WeightsState,
} from '../../contracts/trainer-payloads';
import { StatusReporter } from './status-reporter';
import { CompletionService } from '../complete/service';
import { metricsScorer, type MetricsScorer } from '../eval/metrics';
import { COMPLETION_DEFAULTS } from '../../contracts/defaults';
import type { CompleteParams, CompleteResult } from '../../contracts/trainer-payloads';
import { errorMessage } from '../../protocol/errors';

/** A request the host refuses in its current state (mapped to a JSON-RPC error code by main.ts). */
export class HostStateError extends Error {
  constructor(
    readonly reason: 'notInitialized' | 'busy',
    message: string,
  ) {
    super(message);
    this.name = 'HostStateError';
  }
}

export class TrainerSession {
  private engine: Engine | undefined;
  private engineInfo: InitializeResult | undefined;
  private initParams: InitializeParams | undefined;
  private tokenizerPath = '';
  private job: { kind: TrainerJob; abort: AbortController; done: Promise<unknown> } | undefined;
  /** What the engine's weights are (changed by hold(), which reports them). */
  private weights: WeightsState = baseWeights;
  /** The federation seed and η of the coefficients applied to the replica, to take them back exactly. */
  private applied: { federationSeed: number; eta: number } | null = null;
  /** The ParameterSet accepts one federation seed for its lifetime: the first one applied. */
  private lockedSeed: number | null = null;
  readonly reporter: StatusReporter;
  /** Completions, made at the first request; dropped with the engine. */
  private completions: CompletionService<WeightsState> | undefined;
  /** Held-out measures beside the loss (top-1 accuracy, next line or Rouge-L), made at the first evaluation. */
  private scorer: MetricsScorer | undefined;
  /** The run a local training job belongs to (its weights' runId while it runs). */
  private trainingRunId: string | null = null;

  constructor(private readonly notify: HostNotifier) {
    this.reporter = new StatusReporter(notify);
  }

  async initialize(params: InitializeParams): Promise<InitializeResult> {
    if (this.job) throw new HostStateError('busy', `cannot reload the model while ${this.job.kind} is running`);
    await this.engine?.close();
    this.engine = undefined;
    this.reporter.reset({ state: 'loading', weights: null, detail: `Loading ${params.model || 'the bundled model'}` });
    try {
      const engine = await this.open(params);
      this.engine = engine;
      this.tokenizerPath = resolveModelPaths(params.model || undefined, params.tokenizer || undefined).tokenizer;
      this.engineInfo = {
        parameters: engine.params.parameterCount,
        provider: engine.session.executionProvider,
        kernel: engine.params.kernel,
        forwardPrecision: engine.forwardPrecision.used,
        modelPath: engine.modelPath,
        modelIdentity: engine.model.identity,
      };
      for (const attempt of engine.session.providerReport.attempts) {
        if (attempt.reason) this.notify.log('info', `execution provider ${attempt.name} not used: ${attempt.reason}`);
      }
      const { adapterNote } = engine.session.providerReport;
      if (adapterNote) this.notify.log('info', `WebGPU adapter: ${adapterNote}`);
      if (engine.forwardPrecision.note) this.notify.log('warn', engine.forwardPrecision.note);
      // What the Training view and the status bar show: the provider, and float16 forwards where they run.
      const provider = `${engine.session.executionProvider}${engine.forwardPrecision.used === 'float16' ? ' · float16' : ''}`;
      this.notify.log(
        'info',
        `loaded ${engine.modelPath}: ${engine.params.parameterCount.toLocaleString('en-US')} parameters, ${provider}, kernel ${engine.params.kernel}`,
      );
      this.reporter.reset({ state: 'idle', provider });
      return this.engineInfo;
    } catch (err) {
      this.reporter.reset({ state: 'error', detail: errorMessage(err) });
      throw err;
    }
  }

  /** Scores the held-out split (the training split rule at the data's heldOutFraction) with the weights the engine holds. */
  async evaluate(params: EvaluateParams, signal: AbortSignal): Promise<EvaluateResult> {
    return this.runJob('evaluation', signal, async (engine) => {
      if (!(params.data.heldOutFraction > 0)) throw new Error('the held-out fraction is 0: there is no held-out split to evaluate');
      const data = await this.loadData(engine, params.data);
      const examples = data.heldOut.slice(0, params.maxExamples);
      if (examples.length === 0) throw new Error(`no held-out examples in ${params.data.path} (${data.train.length} training examples)`);
      const loss = await evaluateLoss(engine.session, examples, { batchSize: params.batchSize, seqLen: params.data.seqLen, padId: engine.tokenizer.padId });
      const m = await this.metricsOf(engine).score(examples);
      const generation = m.rougeL ?? m.exactMatch;
      const percent = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);
      this.notify.log(
        'info',
        `evaluated ${describeWeights(this.weights)} on ${examples.length} of ${data.heldOut.length} held-out examples (${loss.tokens} tokens): loss ${loss.loss.toFixed(4)}, perplexity ${loss.perplexity.toFixed(2)}, top-1 accuracy ${percent(m.accuracy)}, ${m.rougeL !== null ? 'Rouge-L' : 'next-line exact match'} ${percent(generation)} (${m.generated} generated)`,
      );
      return {
        loss: loss.loss,
        perplexity: loss.perplexity,
        tokens: loss.tokens,
        examples: examples.length,
        heldOutExamples: data.heldOut.length,
        weights: this.weights,
        accuracy: m.accuracy,
        generation,
        ...(generation !== null ? { generationMetric: m.rougeL !== null ? ('rougeL' as const) : ('exactMatch' as const) } : {}),
      };
    });
  }

  async startTraining(params: StartTrainingParams, signal: AbortSignal): Promise<TrainingResult> {
    return this.runJob('training', signal, async (engine, jobSignal) => {
      this.reporter.reset({ state: 'loading', mode: 'local', steps: params.steps, detail: `Reading ${params.data.path}` });
      const runId = params.runId ?? null;
      this.trainingRunId = runId;
      let resume: { checkpoint: Checkpoint } | undefined;
      if (params.resumeFrom) {
        const checkpoint = loadCheckpoint(params.resumeFrom);
        if (checkpoint.round !== undefined) throw new Error(`${params.resumeFrom} is a federation's checkpoint, not a local run's`);
        if (checkpoint.k !== params.k || checkpoint.federationSeed !== params.federationSeed || checkpoint.eta !== params.eta) {
          throw new Error(
            `${params.resumeFrom} was trained with K = ${checkpoint.k}, seed ${checkpoint.federationSeed}, η = ${checkpoint.eta}; the run asks for K = ${params.k}, seed ${params.federationSeed}, η = ${params.eta}`,
          );
        }
        engine = await this.applyCheckpointTo(engine, checkpoint, params.resumeFrom);
        resume = { checkpoint };
        this.hold({ kind: 'local', steps: checkpoint.steps ?? 0, round: 0, runId, restored: true });
      } else {
        engine = await this.toBase(engine, params.federationSeed);
      }
      const data = await this.loadData(engine, params.data);
      try {
        const { result } = await trainLocally(
          engine,
          data,
          params,
          this.reporter,
          this.notify,
          jobSignal,
          () => undefined,
          resume,
          () => this.completions?.atRest(),
          (examples) => this.metricsOf(engine).score(examples),
        );
        // The run leaves its best evaluated point (trainLocally applied its coefficients when it was not the last step).
        const keptStep = result.best?.step ?? result.totalSteps;
        if (engine.params.appliedCoefficients().size > 0 && this.applied === null) {
          this.applied = { federationSeed: params.federationSeed, eta: params.eta };
          this.lockedSeed = params.federationSeed;
        }
        this.hold(keptStep > 0 ? { kind: 'local', steps: keptStep, round: 0, runId, restored: false } : baseWeights);
        this.reporter.update({ state: result.stopped ? 'stopped' : 'finished', detail: `${result.totalSteps} steps; ${heldOutChange(result)}` });
        return { ...result, weights: this.weights };
      } catch (err) {
        // The weights are what the run left: its step so far (its checkpoint has the last sound ones).
        this.hold(this.liveWeights());
        this.reporter.update({ state: 'error', detail: errorMessage(err) });
        throw err;
      }
    });
  }

  async joinFederation(params: JoinFederationParams, signal: AbortSignal): Promise<FederationResult> {
    return this.runJob('federation', signal, async (engine, jobSignal) => {
      this.reporter.reset({ state: 'loading', mode: 'federation', server: params.url, detail: `Reading ${params.data.path}` });
      const runId = params.runId ?? null;
      let lastSyncedRound = 0;
      if (params.resumeFrom) {
        const checkpoint = loadCheckpoint(params.resumeFrom);
        if (checkpoint.round === undefined) throw new Error(`${params.resumeFrom} is a local run's checkpoint, not a federation's`);
        engine = await this.applyCheckpointTo(engine, checkpoint, params.resumeFrom);
        lastSyncedRound = checkpoint.round;
        this.hold({ kind: lastSyncedRound > 0 ? 'federation' : 'base', steps: 0, round: lastSyncedRound, runId, restored: true });
      } else {
        // The federation's seed is known only from its welcome: start from a replica that takes any seed.
        engine = await this.toBase(engine, this.lockedSeed === null ? null : -1);
      }
      const data = await this.loadData(engine, params.data);
      const working = engine;
      // As the round's loss: the held-out examples, else a fixed slice of the training ones.
      const metricsSet = (data.heldOut.length > 0 ? data.heldOut : data.train).slice(0, params.heldOutExamples);
      // The measures of a synced replica are scored beside the next round; the last round has none after
      // it, so the run waits for them before it returns (its measures would come after the run ended).
      let measuring: Promise<void> = Promise.resolve();
      try {
        const trainer = createEngineTrainer(working, data, {
          batchSize: params.batchSize,
          seqLen: params.data.seqLen,
          clientSeed: params.clientSeed,
          heldOutExamples: params.heldOutExamples,
          atRest: () => this.completions?.whileDecoding(),
        });
        this.reporter.update({ state: 'connecting', committedRound: lastSyncedRound, detail: `Connecting to ${params.url}` });
        const hooks = {
          synced: (round: number, config: FederationConfig) => {
            this.applied = { federationSeed: config.federationSeed, eta: config.eta };
            if (round > 0) this.lockedSeed = config.federationSeed;
            this.hold({ kind: round > 0 ? 'federation' : 'base', steps: 0, round, runId, restored: false });
            // The replica is at rest here: completions copy it (a synchronous copy on the host engine).
            void this.completions?.synced().catch((err: unknown) => this.notify.log('warn', `completions: ${errorMessage(err)}`));
            // Measures of the committed replica (the base model at round 0), scored beside the next round.
            const step = round * config.tau;
            measuring = this.metricsOf(working)
              .score(metricsSet, { generationExamples: Math.min(16, metricsSet.length) })
              .then((m) => this.notify.metrics({ step, round, accuracy: m.accuracy, exactMatch: m.exactMatch, rougeL: m.rougeL }))
              .catch((err: unknown) => this.notify.log('warn', `held-out measures after round ${round}: ${errorMessage(err)}`));
            if (params.checkpointPath) {
              saveCheckpoint(
                params.checkpointPath,
                makeCheckpoint(federationOrigin(working.model.identity, config), working.params.appliedCoefficients(), { round }),
              );
            }
          },
        };
        const result = await runFederation(trainer, working.params.parameterCount, params, this.reporter, this.notify, jobSignal, hooks, lastSyncedRound);
        await measuring;
        if (result.stopped) this.reporter.update({ state: 'stopped', detail: `Left the federation after round ${result.finalRound}` });
        return { finalRound: result.finalRound, digest: result.digest, stopped: result.stopped, weights: this.weights };
      } catch (err) {
        this.reporter.update({ state: 'error', detail: errorMessage(err) });
        throw err;
      }
    });
  }

  /** Makes the engine's weights a run's checkpoint (base + its coefficients), whatever they were. */
  async loadRunCheckpoint(params: LoadCheckpointParams): Promise<WeightsResult> {
    return this.runJob('checkpoint', new AbortController().signal, async (engine) => {
      const checkpoint = loadCheckpoint(params.path);
      await this.applyCheckpointTo(engine, checkpoint, params.path);
      this.hold(
        checkpoint.round !== undefined
          ? { kind: checkpoint.round > 0 ? 'federation' : 'base', steps: 0, round: checkpoint.round, runId: params.runId, restored: true }
          : { kind: (checkpoint.steps ?? 0) > 0 ? 'local' : 'base', steps: checkpoint.steps ?? 0, round: 0, runId: params.runId, restored: true },
      );
      this.notify.log('info', `loaded ${params.path}: ${describeWeights(this.weights)}`);
      return { weights: this.weights };
    });
  }

  /** Returns the engine to the base model. */
  async resetWeights(): Promise<WeightsResult> {
    return this.runJob('checkpoint', new AbortController().signal, async (engine) => {
      await this.toBase(engine, null);
      return { weights: this.weights };
    });
  }

  /** A completion of the text before the cursor; it runs beside any job, over its own copy of the weights. */
  async complete(params: CompleteParams, signal: AbortSignal): Promise<CompleteResult> {
    const engine = this.engine;
    if (!engine) throw new HostStateError('notInitialized', 'the model is not loaded: send initialize first');
    this.completions ??= new CompletionService<WeightsState>(
      {
        engine,
        busy: () => this.job !== undefined && this.job.kind !== 'evaluation' && this.job.kind !== 'export',
        describe: () => this.liveWeights(),
      },
      COMPLETION_DEFAULTS.threads,
    );
    const r = await this.completions.complete(params, signal);
    return {
      text: r.text,
      tokens: r.tokens,
      finish: r.finish,
      firstTokenMs: r.firstTokenMs,
      totalMs: r.totalMs,
      promptTokens: r.promptTokens,
      source: r.source,
      weights: r.weights,
      decoder: r.decoder,
      modelPath: engine.modelPath,
    };
  }

  /** Copies of the weights completions have taken so far (benchmarks). */
  get completionSnapshots(): number {
    return this.completions?.snapshots ?? 0;
  }

  /** The engine's weights are these from now on: the status says so at once. */
  private hold(weights: WeightsState): void {
    this.weights = weights;
    this.reporter.hold(weights);
  }

  private metricsOf(engine: Engine): MetricsScorer {
    return (this.scorer ??= metricsScorer(engine, this.initParams?.threads || undefined));
  }

  /** What the working weights are now: during a local run, its step so far. */
  private liveWeights(): WeightsState {
    if (this.job?.kind !== 'training') return this.weights;
    const step = this.reporter.status.step;
    return step > 0 ? { kind: 'local', steps: step, round: 0, runId: this.trainingRunId, restored: false } : this.weights;
  }

  /** Aborts the running job, if any; its request then resolves with `stopped: true`. */
  stop(): boolean {
    if (!this.job) return false;
    if (!this.job.abort.signal.aborted && (this.job.kind === 'training' || this.job.kind === 'federation')) {
      this.reporter.update({
        state: 'stopping',
        detail: this.job.kind === 'federation' ? 'Leaving the federation after the current step…' : 'Stopping after the current step…',
      });
    }
    this.job.abort.abort();
    return true;
  }

  async exportModel(params: ExportModelParams): Promise<ExportModelResult> {
    return this.runJob('export', new AbortController().signal, async (engine) => {
      const out = resolve(params.out);
      mkdirSync(dirname(out), { recursive: true });
      // On WebGPU the trained weights are the device's: bring them to the host first.
      await pullWorkingWeights(engine);
      const result = exportModel(engine.model, engine.params.weights, out);
      // A model without its tokenizer cannot be used: copy the tokenizer files beside it.
      const copied: string[] = [];
      const source = dirname(this.tokenizerPath);
      if (source !== dirname(out)) {
        for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
          if (existsSync(join(source, file)) && !existsSync(join(dirname(out), file))) {
            copyFileSync(join(source, file), join(dirname(out), file));
            copied.push(file);
          }
        }
      }
      this.notify.log('info', `exported ${describeWeights(this.weights)} to ${result.path}`);
      return { path: result.path, externalDataPath: result.externalDataPath ?? null, weightBytes: result.weightBytes, copied, weights: this.weights };
    });
  }

  /** Stops the job, lets it end (a local run writes its last checkpoint) for at most `graceMs`, closes the engine. */
  async dispose(graceMs = 2000): Promise<void> {
    const running = this.job?.done;
    this.stop();
    if (running) await Promise.race([running.catch(() => undefined), new Promise((r) => setTimeout(r, graceMs))]);
    this.reporter.dispose();
    await this.completions?.dispose().catch(() => undefined);
    await this.scorer?.release().catch(() => undefined);
    await this.engine?.close().catch(() => undefined);
  }

  private async open(params: InitializeParams): Promise<Engine> {
    // Completions and the scorer read the engine's weights: a new engine needs new ones.
    await this.completions?.dispose();
    this.completions = undefined;
    await this.scorer?.release();
    this.scorer = undefined;
    const engine = await openEngine(engineOptions(params));
    this.initParams = params;
    this.hold(baseWeights);
    this.applied = null;
    this.lockedSeed = null;
    return engine;
  }

  /**
   * Back to the base model: applied coefficients are taken back exactly (integers), local changes dropped.
   * `nextSeed`: the federation seed about to be applied (null: none; -1: unknown) — the ParameterSet takes
   * only the first seed it saw, so another one needs the engine reopened.
   */
  private async toBase(engine: Engine, nextSeed: number | null): Promise<Engine> {
    if (nextSeed !== null && this.lockedSeed !== null && nextSeed !== this.lockedSeed) {
      this.reporter.update({ weights: null, detail: 'Reloading the base model' });
      await engine.close();
      this.engine = undefined;
      const params = this.initParams;
      if (!params) throw new HostStateError('notInitialized', 'the model is not loaded: send initialize first');
      this.engine = await this.open(params);
      return this.engine;
    }
    const applied = engine.params.appliedCoefficients();
    if (applied.size > 0) {
      if (!this.applied) throw new Error('the replica holds coefficients of an unknown origin');
      const seeds = [...applied.keys()];
      engine.params.applyCoefficientDelta(
        this.applied.federationSeed,
        seeds,
        seeds.map((j) => -(applied.get(j) ?? 0)),
        this.applied.eta,
      );
    }
    engine.params.resetToBase();
    engine.weights.resetToBase();
    this.applied = null;
    this.hold(baseWeights);
    return engine;
  }

  /** Base + the checkpoint's coefficients, after checking it belongs to this model. */
  private async applyCheckpointTo(engine: Engine, checkpoint: Checkpoint, source: string): Promise<Engine> {
    if (checkpoint.baseModel !== engine.model.identity) {
      throw new Error(
        `${source} was made for base model ${checkpoint.baseModel.slice(0, 12)}…, not the loaded model ${engine.model.identity.slice(0, 12)}… (${engine.modelPath})`,
      );
    }
    const working = await this.toBase(engine, checkpoint.federationSeed);
    applyCheckpoint(working.params, checkpoint, working.model.identity, source);
    if (Object.keys(checkpoint.coefficients).length > 0) {
      this.applied = { federationSeed: checkpoint.federationSeed, eta: checkpoint.eta };
      this.lockedSeed = checkpoint.federationSeed;
    }
    working.weights.resetToBase();
    return working;
  }

  private async runJob<T>(kind: TrainerJob, signal: AbortSignal, body: (engine: Engine, signal: AbortSignal) => Promise<T>): Promise<T> {
    const engine = this.engine;
    if (!engine) throw new HostStateError('notInitialized', 'the model is not loaded: send initialize first');
    if (this.job) throw new HostStateError('busy', `${this.job.kind} is already running; stop it first`);
    const abort = new AbortController();
    const onCancel = () => abort.abort();
    signal.addEventListener('abort', onCancel, { once: true });
    let settle: () => void = () => undefined;
    this.job = { kind, abort, done: new Promise<void>((r) => (settle = r)) };
    try {
      // The body runs up to its first await: a local run or a federation starts its status afresh there,
      // so the job is named in a status of its own, never beside an earlier job's failure.
      const done = body(engine, abort.signal);
      this.reporter.running(kind);
      return await done;
    } finally {
      signal.removeEventListener('abort', onCancel);
      this.job = undefined;
      settle();
      // Sent before the job's answer: a caller that has it reads a status without the job.
      this.reporter.running(null);
      this.reporter.flush();
      await this.completions?.jobEnded().catch((err: unknown) => this.notify.log('warn', `completions: ${errorMessage(err)}`));
    }
  }

  private async loadData(engine: Engine, spec: DataSpec): Promise<Dataset> {
    let problems = 0;
    const data = await loadDataset(spec.path, {
      tokenizer: engine.tokenizer,
      seqLen: spec.seqLen,
      include: spec.include,
      heldOutFraction: spec.heldOutFraction,
      policy: 'skip',
      onProblem: (problem) => {
        // The first problems are worth reading; thousands of them are not.
        if (++problems <= 20) this.notify.log('warn', `dataset: ${problem.file}${problem.line > 0 ? `:${problem.line}` : ''}: ${problem.message}`);
      },
    });
    // A model inside the data (an export, a downloaded one) is left out: say which, so no one wonders.
    const models = data.skipped.filter((s) => s.reason === MODEL_FOLDER_REASON).map((s) => s.file);
    if (models.length > 0) this.notify.log('info', `dataset: left out ${models.join(', ')} (${MODEL_FOLDER_REASON})`);
    return data;
  }
}
