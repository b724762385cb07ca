// What the commands drive, composed of three parts with one job each: the trainer (TrainerService: the
// supervised process behind its typed client, one job at a time, the weights its status says it holds),
// the run recorder (every local run and federation recorded and checkpointed in its run's folder, resumed
// after a window took it down) and the local federation server (LocalServer). This module turns the
// settings into the trainer's requests.
import { join } from 'node:path';
import * as vscode from 'vscode';
import type {
  CompleteParams,
  CompleteResult,
  EvaluateResult,
  ExportModelResult,
  FederationResult,
  JoinFederationParams,
  StartTrainingParams,
  TrainingResult,
  WeightsState,
} from '../../contracts/trainer-rpc';
import { CLIENT_DEFAULTS, TRAINING_DEFAULTS } from '../../contracts/defaults';
import type { RunRecord } from '../../contracts/runs';
import type { ServerProcessSpec, ServerProgress } from '../../contracts/server-process';
import { readSettings } from '../config';
import { settingError, UserFacingError } from '../errors';
import type { RunStore } from '../state/runStore';
import { modelDisplayName } from '../modelName';
import { LocalServer, type LocalServerAddress } from './localServer';
import { RunRecorder } from './runRecorder';
import { TrainerService, type JobKind } from './trainerService';
import { dataSpecOf } from './dataSpec';
import { FederationIdentity } from './federationIdentity';

export type { LocalServerAddress } from './localServer';
export { UserFacingError };

/** Held-out examples an evaluation scores: the same first ones as a local run's evaluations. */
const EVAL_EXAMPLES = TRAINING_DEFAULTS.evalExamples;
/** A local run writes its checkpoint at least this often (steps), besides its evaluations. */
const CHECKPOINT_EVERY = 10;

export class TrainingController implements vscode.Disposable {
  readonly trainer: TrainerService;
  readonly server: LocalServer;
  private readonly runs: RunRecorder;
  private readonly identity: FederationIdentity;

  constructor(
    context: vscode.ExtensionContext,
    private readonly store: RunStore,
    log: vscode.LogOutputChannel,
  ) {
    const bundle = (name: string) => vscode.Uri.joinPath(context.extensionUri, 'dist', name).fsPath;
    this.trainer = new TrainerService(bundle('trainer.js'), store, log);
    this.server = new LocalServer(bundle('run-server.js'), join(context.globalStorageUri.fsPath, 'local-server'), store, log);
    this.runs = new RunRecorder(store, log, this.trainer);
    this.identity = new FederationIdentity(context);
  }

  get busyWith(): JobKind | undefined {
    return this.trainer.busyWith;
  }

  get localServerUrl(): string | undefined {
    return this.server.url;
  }

  /** The weights the trainer holds, as its status says, once it has loaded a model. */
  get currentWeights(): WeightsState | null {
    return this.trainer.currentWeights;
  }

  /** The spec the local server runs with (its bound port included), for a run to resume it. */
  get localServerSpec(): ServerProcessSpec | undefined {
    return this.server.runningSpec;
  }

  /** The local server ran all its rounds: joining it again would train nothing. */
  get localServerFinished(): boolean {
    return this.server.federationFinished;
  }

  /** The local server's events, newest last (the extension-host tests compare its byte counts). */
  get serverEvents(): readonly ServerProgress[] {
    return this.server.events;
  }

  engineSettingsChanged(): void {
    this.trainer.engineSettingsChanged();
  }

  /**
   * A completion from the trainer, beside whatever job it runs (the trainer starts if it is not running).
   * The editor's cancellation reaches the trainer's generator as a JSON-RPC cancellation.
   */
  complete(params: CompleteParams, token?: vscode.CancellationToken): Promise<CompleteResult> {
    return this.trainer.complete(params, token);
  }

  /** Scores the held-out split (training's split rule and held-out fraction) with the weights the trainer holds; recorded with their run. */
  async evaluate(token?: vscode.CancellationToken): Promise<EvaluateResult> {
    const s = readSettings();
    if (!(s.data.heldOutFraction > 0)) throw settingError('data.heldOutFraction', 'the held-out fraction is 0, so there is no held-out split to evaluate');
    const data = dataSpecOf(s);
    return this.trainer.runJob('evaluation', async (c, engine) => {
      const result = await c.request('evaluate', { data, batchSize: s.training.batchSize, maxExamples: EVAL_EXAMPLES }, token);
      this.store.recordEvaluation(result, { name: modelDisplayName(engine.modelPath), identity: engine.modelIdentity });
      return result;
    });
  }

  /** A local run from the settings, or the resume of an interrupted one from its checkpoint. */
  startTraining(token?: vscode.CancellationToken, resumeOf?: RunRecord): Promise<TrainingResult> {
    return this.runs.asRun(() => this.startLocalRun(token, resumeOf));
  }

  private async startLocalRun(token?: vscode.CancellationToken, resumeOf?: RunRecord): Promise<TrainingResult> {
    const s = readSettings();
    const resumed = resumeOf?.resume?.kind === 'local' ? resumeOf.resume.params : undefined;
    const base: StartTrainingParams = resumed ?? {
      data: dataSpecOf(s),
      steps: s.training.steps,
      k: s.training.k,
      federationSeed: s.training.federationSeed,
      epsilon: s.training.epsilon,
      eta: s.training.eta,
      shape: s.training.shape,
      generator: s.training.generator,
      keep: s.training.keep,
      batchSize: s.training.batchSize,
      evalEvery: s.training.evalEvery,
      evalExamples: EVAL_EXAMPLES,
    };
    const { runId: _r, checkpointPath: _c, resumeFrom: _f, ...settings } = base;
    return this.trainer.runJob('training', async (c, engine) => {
      const run = this.runs.begin(
        {
          kind: 'local',
          title: 'Local training',
          model: modelDisplayName(engine.modelPath),
          modelIdentity: engine.modelIdentity,
          server: null,
          steps: settings.steps,
          rounds: 0,
          resume: { kind: 'local', params: settings },
        },
        engine,
        resumeOf,
        (header) => ({ step: header?.steps ?? 0, round: 0 }),
      );
      const params: StartTrainingParams = {
        ...settings,
        runId: run.runId,
        checkpointPath: run.checkpointPath,
        checkpointEvery: CHECKPOINT_EVERY,
        resumeFrom: run.resumeFrom,
      };
      return this.runs.record(run.runId, () => c.request('startTraining', params, token));
    });
  }

  /** Joins a federation (a local one when `localServer` is its server's spec), or rejoins an interrupted run from its checkpoint. */
  joinFederation(
    url: string,
    token?: vscode.CancellationToken,
    options: { localServer?: ServerProcessSpec; resumeOf?: RunRecord } = {},
  ): Promise<FederationResult> {
    return this.runs.asRun(() => this.join(url, token, options));
  }

  private async join(
    url: string,
    token?: vscode.CancellationToken,
    options: { localServer?: ServerProcessSpec; resumeOf?: RunRecord } = {},
  ): Promise<FederationResult> {
    const s = readSettings();
    const data = dataSpecOf(s);
    const secret = await this.identity.token();
    const local = options.localServer ?? null;
    return this.trainer.runJob('federation', async (c, engine) => {
      const run = this.runs.begin(
        {
          kind: 'federation',
          title: local ? 'Local federation' : `Federation at ${url}`,
          model: modelDisplayName(engine.modelPath),
          modelIdentity: engine.modelIdentity,
          server: url,
          steps: 0,
          rounds: local?.config.rounds ?? 0,
          resume: { kind: 'federation', url, localServer: local },
        },
        engine,
        options.resumeOf,
        (header, record) => ({ step: (header?.round ?? 0) * record.summary.steps, round: header?.round ?? 0 }),
      );
      const params: JoinFederationParams = {
        url,
        token: secret,
        clientId: this.identity.clientId(),
        data,
        batchSize: s.training.batchSize,
        heldOutExamples: CLIENT_DEFAULTS.heldOutExamples,
        clientSeed: 0,
        runId: run.runId,
        checkpointPath: run.checkpointPath,
        resumeFrom: run.resumeFrom,
      };
      return this.runs.record(run.runId, () => c.request('joinFederation', params, token));
    });
  }

  /** Stops local training or leaves the federation; resolves once the trainer has stopped the job. Shows "Stopping…" at once. */
  stop(): Promise<boolean> {
    return this.trainer.stop();
  }

  async exportModel(out: string): Promise<ExportModelResult> {
    return this.trainer.runJob('export', (c) => c.request('exportModel', { out }));
  }

  /** Makes the trainer hold a run's fine-tuned weights (from its checkpoint), or the base model. */
  async loadRunWeights(runId: string | 'base'): Promise<WeightsState> {
    return this.trainer.runJob('weights', async (c, engine) => {
      if (runId === 'base') return (await c.request('resetWeights', {})).weights;
      const record = this.store.recordOf(runId);
      if (!record) throw new UserFacingError(`there is no run ${runId}`);
      const header = this.store.records.checkpointHeader(runId);
      if (!header) throw new UserFacingError(`the run "${record.summary.title}" has no checkpoint to load`);
      if (header.baseModel !== engine.modelIdentity) {
        throw new UserFacingError(
          `the run "${record.summary.title}" fine-tuned ${record.summary.model} (${header.baseModel.slice(0, 12)}…), not the loaded model ${modelDisplayName(engine.modelPath)}; select that model first`,
          [{ title: 'Select Model…', command: 'fedkseed.selectModel' }],
        );
      }
      return (await c.request('loadCheckpoint', { path: this.store.records.checkpointPath(runId), runId })).weights;
    });
  }

  /** A run the window took down: resumed without asking when it happened in the last minutes, else offered. */
  interruptedRun(): { record: RunRecord; ask: boolean } | undefined {
    return this.runs.interruptedRun();
  }

  /** Resumes an interrupted run from its checkpoint (a local federation restarts its server on its store first). */
  async resumeRun(record: RunRecord, token?: vscode.CancellationToken): Promise<TrainingResult | FederationResult> {
    const resume = record.resume;
    if (!resume) throw new UserFacingError(`the run "${record.summary.title}" cannot be resumed`);
    if (resume.kind === 'local') return this.startTraining(token, record);
    let url = resume.url;
    if (resume.localServer) url = (await this.startLocalServer(resume.localServer)).url;
    return this.joinFederation(url, token, { localServer: resume.localServer ?? undefined, resumeOf: record });
  }

  /** The checkpoint a resume starts from, when there is one for this model: its step and round. */
  checkpointOf(runId: string): { steps: number; round: number } | undefined {
    return this.runs.checkpointOf(runId);
  }

  setToken(token: string): Promise<void> {
    return this.identity.setToken(token);
  }

  hasToken(): Promise<boolean> {
    return this.identity.hasToken();
  }

  /** The server of Start Local Federation: the running one while its federation goes on, else a new one. */
  startLocalFederationServer(): Promise<LocalServerAddress> {
    return this.server.startForFederation();
  }

  /** Starts the local server from the settings, or again from `resume` (an interrupted run's: its store and port). */
  startLocalServer(resume?: ServerProcessSpec): Promise<LocalServerAddress> {
    return this.server.start(resume);
  }

  stopLocalServer(): Promise<boolean> {
    return this.server.stop();
  }

  dispose(): void {
    // The window is going away (a reload, a close): a run in progress is recorded as interrupted, so the
    // next window resumes it from its checkpoint; the trainer writes its last one as it stops.
    this.store.markInterrupted();
    this.trainer.dispose();
    this.server.dispose();
  }
}
