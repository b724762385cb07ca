// What the trainer host does for each request: owns the engine (one per process, reopened when the
// engine settings change) and runs at most one long job at a time, which `stop` or a JSON-RPC
// cancellation aborts.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadDataset, type Dataset } from '../data/dataset';
import { openEngine, pullWorkingWeights, type Engine } from '../engine';
import { evaluateLoss } from '../eval/loss';
import { exportModel } from '../model';
import { resolveModelPaths } from '../paths';
import { createEngineTrainer } from './engine-trainer-factory';
import { engineOptions } from './engine-options';
import { runFederation } from './federation-run';
import { trainLocally } from './local-training';
import type { HostNotifier } from './notifier';
import {
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
  type StartTrainingParams,
  type TrainingResult,
} from '../../contracts/trainer-payloads';
import { StatusReporter } from './status-reporter';

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

type JobKind = 'evaluation' | 'training' | 'federation' | 'export';

export class TrainerSession {
  private engine: Engine | undefined;
  private engineInfo: InitializeResult | undefined;
  private tokenizerPath = '';
  private job: { kind: JobKind; abort: AbortController } | undefined;
  readonly reporter: StatusReporter;

  constructor(private readonly notify: HostNotifier) {
    this.reporter = new StatusReporter(notify);
  }

  async initialize(params: InitializeParams): Promise<InitializeResult> {
    if (this.job) throw new HostStateError('busy', `cannot reload the model while ${this.job.kind} is running`);
    await this.engine?.close();
    this.engine = undefined;
    this.reporter.reset({ state: 'loading', detail: `Loading ${params.model || 'the bundled model'}` });
    try {
      const engine = await openEngine(engineOptions(params));
      this.engine = engine;
      this.tokenizerPath = resolveModelPaths(params.model || undefined, params.tokenizer || undefined).tokenizer;
      this.engineInfo = {
        parameters: engine.params.parameterCount,
        provider: engine.session.executionProvider,
        kernel: engine.params.kernel,
        modelPath: engine.modelPath,
        modelIdentity: engine.model.identity,
      };
      for (const attempt of engine.session.providerReport.attempts) {
        if (attempt.reason) this.notify.log('info', `execution provider ${attempt.name} not used: ${attempt.reason}`);
      }
      const { adapterNote } = engine.session.providerReport;
      if (adapterNote) this.notify.log('info', `WebGPU adapter: ${adapterNote}`);
      this.notify.log('info', `loaded ${engine.modelPath}: ${engine.params.parameterCount.toLocaleString('en-US')} parameters, ${engine.session.executionProvider}, kernel ${engine.params.kernel}`);
      this.reporter.reset({ state: 'idle', provider: engine.session.executionProvider });
      return this.engineInfo;
    } catch (err) {
      this.reporter.reset({ state: 'error', detail: errorMessage(err) });
      throw err;
    }
  }

  async evaluate(params: EvaluateParams, signal: AbortSignal): Promise<EvaluateResult> {
    return this.runJob('evaluation', signal, async (engine) => {
      const data = await this.loadData(engine, { ...params.data, heldOutFraction: 0 });
      const examples = data.train.slice(0, params.maxExamples);
      if (examples.length === 0) throw new Error(`no examples to evaluate in ${params.data.path}`);
      const loss = await evaluateLoss(engine.session, examples, { batchSize: params.batchSize, seqLen: params.data.seqLen, padId: engine.tokenizer.padId });
      return { loss: loss.loss, perplexity: loss.perplexity, tokens: loss.tokens, examples: examples.length };
    });
  }

  async startTraining(params: StartTrainingParams, signal: AbortSignal): Promise<TrainingResult> {
    return this.runJob('training', signal, async (engine, jobSignal) => {
      this.reporter.reset({ state: 'loading', mode: 'local', steps: params.steps, detail: `Reading ${params.data.path}` });
      const data = await this.loadData(engine, params.data);
      try {
        const { result } = await trainLocally(engine, data, params, this.reporter, this.notify, jobSignal);
        this.reporter.update({ state: result.stopped ? 'stopped' : 'finished', detail: `${result.stepsRun} steps; ${heldOutChange(result)}` });
        return result;
      } catch (err) {
        this.reporter.update({ state: 'error', detail: errorMessage(err) });
        throw err;
      }
    });
  }

  async joinFederation(params: JoinFederationParams, signal: AbortSignal): Promise<FederationResult> {
    return this.runJob('federation', signal, async (engine, jobSignal) => {
      this.reporter.reset({ state: 'loading', mode: 'federation', server: params.url, detail: `Reading ${params.data.path}` });
      const data = await this.loadData(engine, params.data);
      try {
        const trainer = createEngineTrainer(engine, data, {
          batchSize: params.batchSize,
          seqLen: params.data.seqLen,
          clientSeed: params.clientSeed,
          heldOutExamples: params.heldOutExamples,
        });
        this.reporter.update({ state: 'connecting', detail: `Connecting to ${params.url}` });
        const result = await runFederation(trainer, engine.params.parameterCount, params, this.reporter, this.notify, jobSignal);
        if (result.stopped) this.reporter.update({ state: 'stopped', detail: `Left the federation after round ${result.finalRound}` });
        return result;
      } catch (err) {
        this.reporter.update({ state: 'error', detail: errorMessage(err) });
        throw err;
      }
    });
  }

  /** Aborts the running job, if any; its request then resolves with `stopped: true`. */
  stop(): boolean {
    if (!this.job) return false;
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
      return { path: result.path, externalDataPath: result.externalDataPath ?? null, weightBytes: result.weightBytes, copied };
    });
  }

  async dispose(): Promise<void> {
    this.stop();
    this.reporter.dispose();
    await this.engine?.close().catch(() => undefined);
  }

  private async runJob<T>(kind: JobKind, signal: AbortSignal, body: (engine: Engine, signal: AbortSignal) => Promise<T>): Promise<T> {
    const engine = this.engine;
    if (!engine) throw new HostStateError('notInitialized', 'the model is not loaded: send initialize first');
    if (this.job) throw new HostStateError('busy', `${this.job.kind} is already running; stop it first`);
    const abort = new AbortController();
    const onCancel = () => abort.abort();
    signal.addEventListener('abort', onCancel, { once: true });
    this.job = { kind, abort };
    try {
      return await body(engine, abort.signal);
    } finally {
      signal.removeEventListener('abort', onCancel);
      this.job = undefined;
      this.reporter.flush();
    }
  }

  private loadData(engine: Engine, spec: DataSpec): Promise<Dataset> {
    let problems = 0;
    return loadDataset(spec.path, {
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
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
