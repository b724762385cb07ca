// What the commands drive: one supervised trainer process (engine, local training, federation client)
// and one supervised server process (the local federation server). It mirrors their notifications and
// events into the RunStore, keeps the context keys that enable commands, and reloads the engine only
// when an engine setting changed. Every run is recorded (extension/state/) and checkpointed by the
// trainer in the run's folder; the weights the trainer holds are tracked, reloaded from their checkpoint
// after any trainer restart, and a run the window took down is resumed from its checkpoint.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import * as vscode from 'vscode';
import { type MessageConnection, ResponseError } from 'vscode-jsonrpc/node';
import * as z from 'zod/mini';
import {
  baseWeights,
  completeResultSchema,
  connectionFailureSchema,
  type CompleteParams,
  type CompleteResult,
  describeWeights,
  evaluateResultSchema,
  idleTrainerStatus,
  exportModelResultSchema,
  federationResultSchema,
  initializeResultSchema,
  Notifications,
  parsePayload,
  Requests,
  TrainerErrorCodes,
  trainingResultSchema,
  weightsResultSchema,
  type ConnectionFailure,
  type EvaluateResult,
  type ExportModelResult,
  type FederationResult,
  type InitializeResult,
  type StartTrainingParams,
  type TrainingResult,
  type WeightsState,
} from '../../contracts/trainer-rpc';
import { CLIENT_DEFAULTS, TRAINING_DEFAULTS } from '../../contracts/defaults';
import { parseWith } from '../../contracts/parse';
import type { RunRecord } from '../../contracts/runs';
import { roundsDoneText } from '../../contracts/run-figures';
import { serverProcessSpecSchema, type ServerProcessSpec, type ServerProgress } from '../../contracts/server-process';
import { readSettings, type FedKSeedSettings } from '../config';
import { openSettingAction, settingError, UserFacingError, type ErrorAction } from '../errors';
import { showInfo, showWarning } from '../commands/messages';
import type { RunStore } from '../state/runStore';
import { modelDisplayName } from '../modelName';
import { ServerProcess, ServerStartError } from './serverProcess';
import { Supervisor } from './supervisor';
import { TrainerProcess } from './trainerProcess';

export const ContextKeys = {
  training: 'fedkseed.training',
  connected: 'fedkseed.connected',
  serverRunning: 'fedkseed.serverRunning',
} as const;

const TOKEN_SECRET = 'fedkseed.federationToken';
const CLIENT_ID_KEY = 'fedkseed.clientId';

type JobKind = 'training' | 'federation' | 'evaluation' | 'export' | 'weights';

export { UserFacingError };

/** Held-out examples an evaluation scores: the same first ones as a local run's evaluations. */
const EVAL_EXAMPLES = TRAINING_DEFAULTS.evalExamples;
/** A local run writes its checkpoint at least this often (steps), besides its evaluations. */
const CHECKPOINT_EVERY = 10;
/** A run the window took down this recently is resumed without asking. */
const RESUME_WITHOUT_ASKING_MS = 10 * 60_000;

/** Where the local federation server listens. */
export interface LocalServerAddress {
  readonly url: string;
  readonly port: number;
}

function checked<T>(schema: z.ZodMiniType<T>, what: string, value: unknown): T {
  const parsed = parsePayload(schema, value);
  if (!parsed.ok) throw new Error(`the trainer sent an invalid ${what} result: ${parsed.error}`);
  return parsed.value;
}

/** What the user can do when a federation cannot be reached, by cause. */
function connectionActions(failure: ConnectionFailure): ErrorAction[] {
  const retry: ErrorAction = { title: 'Retry', command: 'fedkseed.connectFederation', args: [failure.url] };
  if (failure.cause === 'auth') return [{ title: 'Set Token…', command: 'fedkseed.setFederationToken' }, retry];
  return [openSettingAction('server.url'), retry];
}

/** A trainer stderr line that is part of a stack: for a developer (debug level), not the user's log. */
const isStackLine = (line: string) => /^\s+at\s/.test(line);

/** JSON-RPC errors and the server's start failures carry the process's own message (e.g. "model file not found: /path"). */
function unwrap(err: unknown): Error {
  if (err instanceof ResponseError && err.code === TrainerErrorCodes.connectionFailed) {
    const failure = parsePayload(connectionFailureSchema, err.data);
    return new UserFacingError(err.message, failure.ok ? connectionActions(failure.value) : []);
  }
  if (err instanceof ResponseError) return new UserFacingError(err.message);
  if (err instanceof ServerStartError) {
    // The server names a taken port; say where its port comes from.
    return new UserFacingError(err.addressInUse ? `${err.message}: choose another fedkseed.localServer.port, or 0 for any free port` : err.message);
  }
  return err instanceof Error ? err : new Error(String(err));
}

export class TrainingController implements vscode.Disposable {
  readonly trainer: Supervisor<TrainerProcess, MessageConnection>;
  readonly server: Supervisor<ServerProcess, LocalServerAddress>;
  private engine: InitializeResult | undefined;
  private engineStale = false;
  private job: JobKind | undefined;
  /** What the server process is started with; a restart after a crash reuses it (same store, same port). */
  private serverSpec: ServerProcessSpec | undefined;
  private serverInfo: LocalServerAddress | undefined;
  /** The local server said its federation finished (every round committed). */
  private serverFinished = false;
  /** When the local server (last) started listening: the runs since then are its. */
  private serverStartedAt = 0;
  /** What the trainer's weights are (the trainer says so with each result); reloaded after a restart. */
  private weights: WeightsState | null = null;
  /** The local server's events, newest last (the extension-host tests compare its byte counts). */
  readonly serverEvents: ServerProgress[] = [];
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly store: RunStore,
    private readonly log: vscode.LogOutputChannel,
  ) {
    const bundle = (name: string) => vscode.Uri.joinPath(context.extensionUri, 'dist', name).fsPath;
    this.trainer = new Supervisor({
      role: 'trainer',
      log,
      launch: () => TrainerProcess.start(bundle('trainer.js'), (line) => (isStackLine(line) ? log.debug(`[trainer] ${line}`) : log.info(`[trainer] ${line}`))),
      prepare: (p) => this.prepareTrainer(p.connection),
    });
    this.server = new Supervisor({
      role: 'federation server',
      log,
      launch: () => ServerProcess.start(bundle('run-server.js'), this.currentServerSpec(), (line) => log.info(`[federation server] ${line}`), (e) => this.onServerProgress(e)),
      prepare: (p) => this.prepareServer(p),
    });
    this.disposables.push(
      this.trainer,
      this.server,
      this.trainer.onDidExitUnexpectedly(() => {
        this.engine = undefined;
        this.store.setTrainer({ ...this.store.status.trainer, state: 'error', detail: 'The trainer process exited unexpectedly; see the FedKSeed log.' });
      }),
      this.server.onDidExitUnexpectedly(({ restarting }) => {
        if (!restarting) {
          this.serverSpec = undefined;
          this.setServer(undefined);
        }
      }),
    );
    this.updateContext();
  }

  get busyWith(): JobKind | undefined {
    return this.job;
  }

  get localServerUrl(): string | undefined {
    return this.serverInfo?.url;
  }

  /** Engine settings changed: reload now if idle, else once the running job ends. */
  engineSettingsChanged(): void {
    if (!this.trainer.running) return;
    if (this.job) {
      this.engineStale = true;
      this.log.info('engine settings changed; the model is reloaded when the current job ends');
      return;
    }
    this.log.info('engine settings changed; reloading the model on next use');
    this.engine = undefined;
    void this.trainer.stop();
  }

  async loadEngine(): Promise<InitializeResult> {
    this.checkEnginePaths(readSettings());
    await this.trainer.ready().catch((err: unknown) => {
      throw unwrap(err);
    });
    if (!this.engine) throw new Error('the trainer started without a model');
    return this.engine;
  }

  /** The weights the trainer holds, once it has loaded a model. */
  get currentWeights(): WeightsState | null {
    return this.weights;
  }

  /**
   * A completion from the trainer, beside whatever job it runs (the trainer starts if it is not running).
   * The editor's cancellation reaches the trainer's generator as a JSON-RPC cancellation.
   */
  async complete(params: CompleteParams, token?: vscode.CancellationToken): Promise<CompleteResult> {
    await this.loadEngine();
    const c = await this.trainer.ready();
    return checked(completeResultSchema, 'complete', await c.sendRequest(Requests.complete, params, token));
  }

  /** Scores the held-out split (training's split rule and held-out fraction) with the weights the trainer holds; recorded with their run. */
  async evaluate(token?: vscode.CancellationToken): Promise<EvaluateResult> {
    const s = readSettings();
    if (!(s.data.heldOutFraction > 0)) throw settingError('data.heldOutFraction', 'the held-out fraction is 0, so there is no held-out split to evaluate');
    const data = this.dataSpec(s, s.data.heldOutFraction);
    return this.runJob('evaluation', async (c, engine) => {
      const result = checked(evaluateResultSchema, 'evaluate', await c.sendRequest(Requests.evaluate, { data, batchSize: s.training.batchSize, maxExamples: EVAL_EXAMPLES }, token));
      this.setWeights(result.weights);
      this.store.recordEvaluation(result, { name: modelDisplayName(engine.modelPath), identity: engine.modelIdentity });
      return result;
    });
  }

  /** A local run from the settings, or the resume of an interrupted one from its checkpoint. */
  startTraining(token?: vscode.CancellationToken, resumeOf?: RunRecord): Promise<TrainingResult> {
    return this.asRun(() => this.startLocalRun(token, resumeOf));
  }

  private async startLocalRun(token?: vscode.CancellationToken, resumeOf?: RunRecord): Promise<TrainingResult> {
    const s = readSettings();
    const resumed = resumeOf?.resume?.kind === 'local' ? resumeOf.resume.params : undefined;
    const base: StartTrainingParams = resumed ?? {
      data: this.dataSpec(s, s.data.heldOutFraction),
      steps: s.training.steps,
      k: s.training.k,
      federationSeed: s.training.federationSeed,
      epsilon: s.training.epsilon,
      eta: s.training.eta,
      shape: s.training.shape,
      keep: s.training.keep,
      batchSize: s.training.batchSize,
      evalEvery: s.training.evalEvery,
      evalExamples: EVAL_EXAMPLES,
    };
    const { runId: _r, checkpointPath: _c, resumeFrom: _f, ...settings } = base;
    return this.runJob('training', async (c, engine) => {
      const header = resumeOf ? this.usableCheckpoint(resumeOf, engine) : undefined;
      const runId = this.store.beginRun(
        { kind: 'local', title: 'Local training', model: modelDisplayName(engine.modelPath), modelIdentity: engine.modelIdentity, server: null, steps: settings.steps, rounds: 0, resume: { kind: 'local', params: settings } },
        resumeOf ? { record: resumeOf, step: header?.steps ?? 0, round: 0 } : undefined,
      );
      const params: StartTrainingParams = {
        ...settings,
        runId,
        checkpointPath: this.runCheckpoint(runId),
        checkpointEvery: CHECKPOINT_EVERY,
        resumeFrom: header ? this.store.records.checkpointPath(runId) : undefined,
      };
      return this.recordRun(runId, async () => {
        const result = checked(trainingResultSchema, 'startTraining', await c.sendRequest(Requests.startTraining, params, token));
        this.setWeights(result.weights);
        return { result, state: result.stopped ? 'stopped' : 'finished' };
      });
    });
  }

  /** Joins a federation (a local one when `localServer` is its server's spec), or rejoins an interrupted run from its checkpoint. */
  joinFederation(url: string, token?: vscode.CancellationToken, options: { localServer?: ServerProcessSpec; resumeOf?: RunRecord } = {}): Promise<FederationResult> {
    return this.asRun(() => this.join(url, token, options));
  }

  private async join(url: string, token?: vscode.CancellationToken, options: { localServer?: ServerProcessSpec; resumeOf?: RunRecord } = {}): Promise<FederationResult> {
    const s = readSettings();
    const data = this.dataSpec(s, s.data.heldOutFraction);
    const secret = (await this.context.secrets.get(TOKEN_SECRET)) ?? '';
    const { resumeOf } = options;
    return this.runJob('federation', async (c, engine) => {
      const header = resumeOf ? this.usableCheckpoint(resumeOf, engine) : undefined;
      const local = options.localServer ?? null;
      const runId = this.store.beginRun(
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
        resumeOf ? { record: resumeOf, step: (header?.round ?? 0) * resumeOf.summary.steps, round: header?.round ?? 0 } : undefined,
      );
      const params = {
        url,
        token: secret,
        clientId: this.clientId(),
        data,
        batchSize: s.training.batchSize,
        heldOutExamples: CLIENT_DEFAULTS.heldOutExamples,
        clientSeed: 0,
        runId,
        checkpointPath: this.runCheckpoint(runId),
        resumeFrom: header ? this.store.records.checkpointPath(runId) : undefined,
      };
      return this.recordRun(runId, async () => {
        const result = checked(federationResultSchema, 'joinFederation', await c.sendRequest(Requests.joinFederation, params, token));
        this.setWeights(result.weights);
        return { result, state: result.stopped ? 'stopped' : 'finished' };
      });
    });
  }

  /** Stops local training or leaves the federation; resolves once the trainer has stopped the job. Shows "Stopping…" at once. */
  async stop(): Promise<boolean> {
    if (!this.job || !this.trainer.running) return false;
    if (this.job === 'training' || this.job === 'federation') {
      const trainer = this.store.status.trainer;
      if (trainer.state !== 'stopped' && trainer.state !== 'finished' && trainer.state !== 'error') {
        this.store.setTrainer({ ...trainer, state: 'stopping', detail: this.job === 'federation' ? 'Leaving the federation…' : 'Stopping after the current step…' });
      }
    }
    const c = await this.trainer.ready();
    const result = await c.sendRequest(Requests.stop, {});
    return result.stopped;
  }

  async exportModel(out: string): Promise<ExportModelResult> {
    return this.runJob('export', async (c) => {
      const result = checked(exportModelResultSchema, 'exportModel', await c.sendRequest(Requests.exportModel, { out }));
      this.setWeights(result.weights);
      return result;
    });
  }

  /** Makes the trainer hold a run's fine-tuned weights (from its checkpoint), or the base model. */
  async loadRunWeights(runId: string | 'base'): Promise<WeightsState> {
    return this.runJob('weights', async (c, engine) => {
      if (runId === 'base') {
        const result = checked(weightsResultSchema, 'resetWeights', await c.sendRequest(Requests.resetWeights, {}));
        this.setWeights(result.weights);
        return result.weights;
      }
      const record = this.store.recordOf(runId);
      if (!record) throw new UserFacingError(`there is no run ${runId}`);
      const header = this.store.records.checkpointHeader(runId);
      if (!header) throw new UserFacingError(`the run "${record.summary.title}" has no checkpoint to load`);
      if (header.baseModel !== engine.modelIdentity) {
        throw new UserFacingError(`the run "${record.summary.title}" fine-tuned ${record.summary.model} (${header.baseModel.slice(0, 12)}…), not the loaded model ${modelDisplayName(engine.modelPath)}; select that model first`, [
          { title: 'Select Model…', command: 'fedkseed.selectModel' },
        ]);
      }
      const result = checked(weightsResultSchema, 'loadCheckpoint', await c.sendRequest(Requests.loadCheckpoint, { path: this.store.records.checkpointPath(runId), runId }));
      this.setWeights(result.weights);
      return result.weights;
    });
  }

  /**
   * A run the window took down (a reload, a closed window) in this workspace: resumed from its
   * checkpoint without asking when it happened in the last minutes, else offered. Returns the record.
   */
  interruptedRun(): { record: RunRecord; ask: boolean } | undefined {
    const record = this.store.interruptedRun();
    if (!record) return undefined;
    const when = record.summary.interruptedAt ?? null;
    return { record, ask: when === null || Date.now() - when > RESUME_WITHOUT_ASKING_MS };
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
    const header = this.store.records.checkpointHeader(runId);
    return header ? { steps: header.steps ?? 0, round: header.round ?? 0 } : undefined;
  }

  async setToken(token: string): Promise<void> {
    await this.context.secrets.store(TOKEN_SECRET, token);
  }

  async hasToken(): Promise<boolean> {
    return Boolean(await this.context.secrets.get(TOKEN_SECRET));
  }

  /** The spec the local server runs with (its bound port included), for a run to resume it. */
  get localServerSpec(): ServerProcessSpec | undefined {
    return this.serverInfo ? this.serverSpec : undefined;
  }

  /** The local server ran all its rounds: joining it again would train nothing. */
  get localServerFinished(): boolean {
    if (!this.serverInfo) return false;
    const server = this.store.status.localServer;
    const url = this.serverInfo.url;
    // The server's own word, its rounds all committed, or a run of this window that it saw to the end.
    const ranToTheEnd = this.store.summaries.some((r) => r.kind === 'federation' && r.server === url && r.state === 'finished' && r.startedAt >= this.serverStartedAt);
    return this.serverFinished || (server !== null && server.rounds > 0 && server.committed >= server.rounds) || ranToTheEnd;
  }

  /**
   * The server of Start Local Federation: the running one while its federation goes on (this window
   * rejoins it); one that finished is stopped, and a new federation starts with the current settings.
   */
  async startLocalFederationServer(): Promise<LocalServerAddress> {
    if (this.localServerFinished) {
      const server = this.store.status.localServer;
      this.log.info(`the local federation at ${this.serverInfo?.url ?? '?'} finished${server ? ` (${roundsDoneText(server.committed, server.rounds)})` : ''}: it is stopped, and a new one starts with the current settings`);
      await this.stopLocalServer();
    }
    return this.startLocalServer();
  }

  /** Starts the local server from the settings, or again from `resume` (an interrupted run's: its store and port). */
  async startLocalServer(resume?: ServerProcessSpec): Promise<LocalServerAddress> {
    if (this.serverInfo && resume && this.serverSpec?.storePath !== resume.storePath) {
      throw new UserFacingError('another local federation server is running: stop it first, then resume the run (its own server restarts on its store)', [
        { title: 'Stop Local Server', command: 'fedkseed.stopLocalServer' },
      ]);
    }
    if (this.serverInfo) return this.serverInfo;
    if (resume) {
      this.serverSpec = resume;
      try {
        return await this.server.ready();
      } catch {
        // Its port was taken meanwhile: the same store on any free port.
        this.serverSpec = { ...resume, port: 0 };
        try {
          return await this.server.ready();
        } catch (err) {
          this.serverSpec = undefined;
          throw unwrap(err);
        }
      }
    }
    const s = readSettings();
    const root = this.storageDir('local-server');
    // Each start is a new federation; older stores are removed unless a run may still resume them.
    const keep = new Set(this.store.summaries.filter((r) => r.state === 'interrupted').map((r) => this.store.recordOf(r.id)?.resume).flatMap((x) => (x?.kind === 'federation' && x.localServer ? [x.localServer.storePath] : [])));
    for (const old of readdirSync(root)) if (!keep.has(join(root, old))) rmSync(join(root, old), { recursive: true, force: true });
    const spec = parseWith(serverProcessSpecSchema, {
      config: {
        k: s.training.k,
        federationSeed: s.training.federationSeed,
        epsilon: s.training.epsilon,
        eta: s.training.eta,
        shape: s.training.shape,
        tau: s.localServer.tau,
        batchSize: s.training.batchSize,
        sampling: s.localServer.sampling,
        weighting: 'examples',
        rounds: s.localServer.rounds,
        clientsPerRound: s.localServer.clientsPerRound,
        deadlineMs: s.localServer.deadlineSeconds * 1000,
      },
      // The base model every client must hold: the server reads its identity and size.
      model: { path: s.engine.model ?? '' },
      storePath: join(root, `federation-${Date.now()}`),
      host: '127.0.0.1',
      port: s.localServer.port,
      minClients: s.localServer.clientsPerRound,
      requireToken: false,
    } satisfies ServerProcessSpec);
    if (!spec.ok) throw new UserFacingError(`the local server settings are invalid: ${spec.error}`);
    this.serverSpec = spec.value;
    try {
      return await this.server.ready();
    } catch (err) {
      this.serverSpec = undefined;
      throw unwrap(err);
    }
  }

  async stopLocalServer(): Promise<boolean> {
    const wasRunning = this.serverInfo !== undefined;
    this.serverSpec = undefined;
    await this.server.stop();
    this.setServer(undefined);
    return wasRunning;
  }

  dispose(): void {
    // The window is going away (a reload, a close): a run in progress is recorded as interrupted, so the
    // next window resumes it from its checkpoint; the trainer writes its last one as it stops.
    this.store.markInterrupted();
    for (const d of this.disposables) d.dispose();
  }

  /** An earlier failure is not the next job's: the views stop showing it as a job starts. */
  private clearFailure(): void {
    const before = this.store.status.trainer;
    if (before.state === 'error') this.store.setTrainer({ ...idleTrainerStatus, provider: before.provider });
  }

  /**
   * A local run or a federation, from its first check on: an earlier failure is cleared as it starts, and
   * its own failure is what the views show, whether the trainer or the extension found the fault.
   */
  private async asRun<T>(work: () => Promise<T>): Promise<T> {
    if (!this.job) this.clearFailure();
    try {
      return await work();
    } catch (err) {
      const error = unwrap(err);
      const now = this.store.status.trainer;
      const busy = ['loading', 'training', 'connecting', 'connected', 'reconnecting', 'stopping'].includes(now.state);
      if (now.state !== 'error' && !busy) this.store.setTrainer({ ...idleTrainerStatus, provider: now.provider, state: 'error', detail: error.message });
      throw error;
    }
  }

  /** Runs a job's request as a recorded run: the run ends with the job's state, or failed with its error. */
  private async recordRun<T>(runId: string, request: () => Promise<{ result: T; state: 'finished' | 'stopped' }>): Promise<T> {
    const before = this.weights;
    try {
      const { result, state } = await request();
      this.store.endRun(runId, { state });
      this.logRun(runId);
      return result;
    } catch (err) {
      const error = unwrap(err);
      const started = this.store.recordOf(runId)?.summary.state !== 'starting';
      this.store.endRun(runId, { state: 'failed', error: error.message });
      // The trainer dropped its weights for the run: a run that got going has its own checkpoint; one that
      // never started gets the weights from before it back, so nothing is lost on the way.
      const header = this.store.records.checkpointHeader(runId);
      if (started && header) this.setWeights(this.weightsOfCheckpoint(runId, header));
      else if (before && before.kind !== 'base' && this.trainer.running) await this.reloadWeights(await this.trainer.ready(), before, 'quiet');
      throw error;
    }
  }

  private logRun(runId: string): void {
    const run = this.store.recordOf(runId);
    if (!run) return;
    const figures = this.store.dashboard.run?.id === runId ? this.store.dashboard.figures : undefined;
    this.log.info(`${run.summary.title} ${run.summary.state}: ${figures ? `${figures.text.progress}; ${figures.text.total}${figures.text.ratio ? `, ${figures.text.ratio}` : ''}; held-out ${figures.text.heldOut}` : run.summary.state}`);
  }

  private weightsOfCheckpoint(runId: string, header: { steps?: number; round?: number }): WeightsState {
    return header.round !== undefined
      ? { kind: header.round > 0 ? 'federation' : 'base', steps: 0, round: header.round, runId, restored: false }
      : { kind: (header.steps ?? 0) > 0 ? 'local' : 'base', steps: header.steps ?? 0, round: 0, runId, restored: false };
  }

  private setWeights(weights: WeightsState | null): void {
    this.weights = weights;
    this.store.setWeights(weights);
  }

  /**
   * Puts fine-tuned weights back into a (new) trainer from their run's checkpoint. A checkpoint of another
   * base model cannot be: the user is told which weights are not loaded and why, never left to guess.
   */
  private async reloadWeights(c: MessageConnection, weights: WeightsState, tell: 'tell' | 'quiet'): Promise<void> {
    const engine = this.engine;
    const runId = weights.runId;
    const header = runId ? this.store.records.checkpointHeader(runId) : undefined;
    const run = runId ? this.store.recordOf(runId) : undefined;
    const what = `${describeWeights(weights)}${run ? ` of "${run.summary.title}"` : ''}`;
    if (!engine || !runId || !header) {
      this.setWeights(baseWeights);
      void showWarning(`FedKSeed: the trainer restarted and holds the base model; the weights ${what} have no checkpoint to reload.`);
      return;
    }
    if (header.baseModel !== engine.modelIdentity) {
      this.setWeights(baseWeights);
      void showWarning(
        `FedKSeed: the trainer now holds ${modelDisplayName(engine.modelPath)} (base). The weights ${what} belong to ${run?.summary.model ?? 'another model'} and were not loaded; they stay in the run list.`,
      );
      return;
    }
    try {
      const result = checked(weightsResultSchema, 'loadCheckpoint', await c.sendRequest(Requests.loadCheckpoint, { path: this.store.records.checkpointPath(runId), runId }));
      this.setWeights(result.weights);
      this.log.info(`reloaded ${this.store.weightsText(result.weights)} into the trainer from its checkpoint`);
      if (tell === 'tell') void showInfo(`FedKSeed: the trainer restarted; ${this.store.weightsText(result.weights)} reloaded from its checkpoint.`);
    } catch (err) {
      this.setWeights(baseWeights);
      void showWarning(`FedKSeed: the weights ${what} could not be reloaded (${unwrap(err).message}); the trainer holds the base model.`);
    }
  }

  /** A run's checkpoint, if it belongs to the loaded model (else the run restarts from the beginning). */
  private usableCheckpoint(record: RunRecord, engine: InitializeResult): { steps?: number; round?: number } | undefined {
    const header = this.store.records.checkpointHeader(record.summary.id);
    return header && header.baseModel === engine.modelIdentity ? header : undefined;
  }

  /** Where a run's trainer writes its checkpoint (its folder exists from the start). */
  private runCheckpoint(runId: string): string {
    mkdirSync(this.store.records.folder(runId), { recursive: true });
    return this.store.records.checkpointPath(runId);
  }

  /** A model, tokenizer or dataset that is not there is named with its setting and where it is set, with a way out. */
  private checkEnginePaths(s: FedKSeedSettings): void {
    const model = s.engine.model;
    const selectModel: ErrorAction = { title: 'Select Model…', command: 'fedkseed.selectModel' };
    // A path that is not there (an org/name id of the Hugging Face cache is the trainer's to find).
    if (model && isAbsolute(model) && !existsSync(model)) throw settingError('model.path', `model file not found: ${model}`, [selectModel]);
    const tokenizer = s.engine.tokenizer;
    if (tokenizer && !existsSync(tokenizer)) throw settingError('model.tokenizerPath', `tokenizer not found: ${tokenizer}`);
  }

  private async runJob<T>(kind: JobKind, body: (connection: MessageConnection, engine: InitializeResult) => Promise<T>): Promise<T> {
    if (this.job) throw new UserFacingError(`FedKSeed is busy with ${this.job}; stop it first.`);
    this.job = kind;
    this.updateContext();
    this.clearFailure();
    try {
      const engine = await this.loadEngine();
      const connection = await this.trainer.ready();
      return await body(connection, engine);
    } catch (err) {
      throw unwrap(err);
    } finally {
      this.job = undefined;
      this.updateContext();
      if (this.engineStale) {
        this.engineStale = false;
        this.engineSettingsChanged();
      }
    }
  }

  private async prepareTrainer(c: MessageConnection): Promise<MessageConnection> {
    c.onNotification(Notifications.status, (status) => this.store.setTrainer(status));
    c.onNotification(Notifications.steps, (batch) => this.store.addSteps(batch));
    c.onNotification(Notifications.evaluation, (e) => this.store.addEvaluation(e));
    c.onNotification(Notifications.metrics, (m) => this.store.addMetrics(m));
    c.onNotification(Notifications.roundCompleted, (r) => {
      this.store.addRound(r);
      this.onRoundCompleted(r.round);
    });
    c.onNotification(Notifications.seedProbabilities, (p) => this.store.setSeeds(p));
    c.onNotification(Notifications.log, (m) => this.log[m.level](`[trainer] ${m.message}`));
    const settings = readSettings();
    const result = await c.sendRequest(Requests.initialize, settings.engine);
    this.engine = checked(initializeResultSchema, 'initialize', result);
    // By its name ("tiny-code-lm", a model's folder), not its file's ("model.onnx").
    this.store.setModel(modelDisplayName(this.engine.modelPath));
    // A new trainer holds the base model: fine-tuned weights it had before come back from their checkpoint.
    const held = this.weights;
    this.setWeights(baseWeights);
    if (held && held.kind !== 'base') await this.reloadWeights(c, held, 'quiet');
    return c;
  }

  private onRoundCompleted(round: number): void {
    const line = this.store.roundLogLine(round);
    if (line) this.log.info(line);
  }

  private currentServerSpec(): ServerProcessSpec {
    if (!this.serverSpec) throw new Error('the local federation server has no settings to start with');
    return this.serverSpec;
  }

  private async prepareServer(p: ServerProcess): Promise<LocalServerAddress> {
    const { url, port } = await p.listening;
    const spec = this.currentServerSpec();
    // A restart after a crash binds the same port again, so clients reconnect where they were.
    this.serverSpec = { ...spec, port };
    this.setServer({ url, port }, spec.config.rounds);
    return { url, port };
  }

  private onServerProgress(e: ServerProgress): void {
    this.log.info(`[server] ${e.detail}`);
    this.serverEvents.push(e);
    if (e.event === 'finished') this.serverFinished = true;
    if (this.serverEvents.length > 500) this.serverEvents.shift();
    const before = this.store.status.localServer;
    if (!this.serverInfo) return;
    // Rounds done are the committed ones; the round running is the one started and not yet committed.
    const committed = e.event === 'roundStarted' ? Math.max(before?.committed ?? 0, e.round - 1) : e.round;
    const inProgress = e.event === 'roundStarted' ? e.round : e.event === 'roundCommitted' || e.event === 'finished' ? null : (before?.inProgress ?? null);
    this.store.setLocalServer({ url: this.serverInfo.url, committed, inProgress, rounds: e.rounds, clients: e.clients });
  }

  private setServer(info: LocalServerAddress | undefined, rounds = 0): void {
    if (info && info.url !== this.serverInfo?.url) this.serverStartedAt = Date.now();
    this.serverInfo = info;
    this.serverFinished = false;
    this.store.setLocalServer(info ? { url: info.url, committed: 0, inProgress: null, rounds, clients: 0 } : null);
    this.updateContext();
  }

  private dataSpec(s: FedKSeedSettings, heldOutFraction: number) {
    const selectDataset: ErrorAction = { title: 'Select Dataset…', command: 'fedkseed.selectDataset' };
    if (!s.data.path) throw new UserFacingError('No dataset: open a folder or select one (fedkseed.data.path).', [selectDataset, openSettingAction('data.path')]);
    if (!existsSync(s.data.path)) throw settingError('data.path', `dataset not found: ${s.data.path}`, [selectDataset]);
    return { path: s.data.path, include: s.data.include.length > 0 ? s.data.include : undefined, heldOutFraction, seqLen: s.training.seqLen };
  }

  private storageDir(name: string): string {
    const dir = join(this.context.globalStorageUri.fsPath, name);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  private clientId(): string {
    let id = this.context.globalState.get<string>(CLIENT_ID_KEY);
    if (!id) {
      id = `vscode-${randomUUID().slice(0, 8)}`;
      void this.context.globalState.update(CLIENT_ID_KEY, id);
    }
    return id;
  }

  private updateContext(): void {
    void vscode.commands.executeCommand('setContext', ContextKeys.training, this.job === 'training' || this.job === 'federation');
    void vscode.commands.executeCommand('setContext', ContextKeys.connected, this.job === 'federation');
    void vscode.commands.executeCommand('setContext', ContextKeys.serverRunning, this.serverInfo !== undefined);
  }
}
