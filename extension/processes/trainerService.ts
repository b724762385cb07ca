// The trainer as the extension uses it: one supervised process behind the typed client of
// contracts/trainer-rpc.ts, its notifications mirrored into the RunStore, at most one job at a time
// (with the context keys that enable commands), the engine reloaded only when an engine setting
// changed, and the weights it holds tracked from each result and put back from their run's checkpoint
// after any restart.
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import * as vscode from 'vscode';
import {
  baseWeights,
  describeWeights,
  idleTrainerStatus,
  Notifications,
  trainerClient,
  type CompleteParams,
  type CompleteResult,
  type InitializeResult,
  type TrainerClient,
  type WeightsState,
} from '../../contracts/trainer-rpc';
import { readSettings, type FedKSeedSettings } from '../config';
import { settingError, UserFacingError, type ErrorAction } from '../errors';
import { showInfo, showWarning } from '../commands/messages';
import type { RunStore } from '../state/runStore';
import { ContextKeys } from '../ids';
import { modelDisplayName } from '../modelName';
import { unwrap } from './processErrors';
import { Supervisor } from './supervisor';
import { TrainerProcess } from './trainerProcess';

export type JobKind = 'training' | 'federation' | 'evaluation' | 'export' | 'weights';

/** A trainer stderr line that is part of a stack: for a developer (debug level), not the user's log. */
const isStackLine = (line: string) => /^\s+at\s/.test(line);

export class TrainerService implements vscode.Disposable {
  private readonly supervisor: Supervisor<TrainerProcess, TrainerClient>;
  private engine: InitializeResult | undefined;
  private engineStale = false;
  private job: JobKind | undefined;
  /** What the trainer's weights are (the trainer says so with each result); reloaded after a restart. */
  private weights: WeightsState | null = null;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    script: string,
    private readonly store: RunStore,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.supervisor = new Supervisor({
      role: 'trainer',
      log,
      launch: () => TrainerProcess.start(script, (line) => (isStackLine(line) ? log.debug(`[trainer] ${line}`) : log.info(`[trainer] ${line}`))),
      prepare: (p) => this.prepare(p),
    });
    this.disposables.push(
      this.supervisor,
      this.supervisor.onDidExitUnexpectedly(() => {
        this.engine = undefined;
        this.store.setTrainer({ ...this.store.status.trainer, state: 'error', detail: 'The trainer process exited unexpectedly; see the FedKSeed log.' });
      }),
    );
    this.updateContext();
  }

  get pid(): number | undefined {
    return this.supervisor.pid;
  }

  get running(): boolean {
    return this.supervisor.running;
  }

  get busyWith(): JobKind | undefined {
    return this.job;
  }

  /** The weights the trainer holds, once it has loaded a model. */
  get currentWeights(): WeightsState | null {
    return this.weights;
  }

  /** Engine settings changed: reload now if idle, else once the running job ends. */
  engineSettingsChanged(): void {
    if (!this.supervisor.running) return;
    if (this.job) {
      this.engineStale = true;
      this.log.info('engine settings changed; the model is reloaded when the current job ends');
      return;
    }
    this.log.info('engine settings changed; reloading the model on next use');
    this.engine = undefined;
    void this.supervisor.stop();
  }

  async loadEngine(): Promise<InitializeResult> {
    this.checkEnginePaths(readSettings());
    await this.supervisor.ready().catch((err: unknown) => {
      throw unwrap(err);
    });
    if (!this.engine) throw new Error('the trainer started without a model');
    return this.engine;
  }

  /** A completion beside whatever job runs; the editor's cancellation reaches the trainer's generator. */
  async complete(params: CompleteParams, token?: vscode.CancellationToken): Promise<CompleteResult> {
    await this.loadEngine();
    return (await this.supervisor.ready()).request('complete', params, token);
  }

  /** One job at a time, on a started trainer with its model loaded; failures come out as the user reads them. */
  async runJob<T>(kind: JobKind, body: (client: TrainerClient, engine: InitializeResult) => Promise<T>): Promise<T> {
    if (this.job) throw new UserFacingError(`FedKSeed is busy with ${this.job}; stop it first.`);
    this.job = kind;
    this.updateContext();
    this.clearFailure();
    try {
      const engine = await this.loadEngine();
      return await body(await this.supervisor.ready(), engine);
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

  /** Stops local training or leaves the federation; resolves once the trainer has stopped the job. Shows "Stopping…" at once. */
  async stop(): Promise<boolean> {
    if (!this.job || !this.supervisor.running) return false;
    if (this.job === 'training' || this.job === 'federation') {
      const trainer = this.store.status.trainer;
      if (trainer.state !== 'stopped' && trainer.state !== 'finished' && trainer.state !== 'error') {
        this.store.setTrainer({
          ...trainer,
          state: 'stopping',
          detail: this.job === 'federation' ? 'Leaving the federation…' : 'Stopping after the current step…',
        });
      }
    }
    const result = await (await this.supervisor.ready()).request('stop', {});
    return result.stopped;
  }

  /** An earlier failure is not the next job's: the views stop showing it as a job starts. */
  clearFailure(): void {
    const before = this.store.status.trainer;
    if (before.state === 'error') this.store.setTrainer({ ...idleTrainerStatus, provider: before.provider });
  }

  setWeights(weights: WeightsState | null): void {
    this.weights = weights;
    this.store.setWeights(weights);
  }

  /** Gives a running trainer back fine-tuned weights it dropped (a run that never started). */
  async restoreWeights(weights: WeightsState | null): Promise<void> {
    if (weights && weights.kind !== 'base' && this.supervisor.running) await this.reloadWeights(await this.supervisor.ready(), weights, 'quiet');
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }

  /**
   * Puts fine-tuned weights back into a (new) trainer from their run's checkpoint. A checkpoint of another
   * base model cannot be: the user is told which weights are not loaded and why, never left to guess.
   */
  private async reloadWeights(client: TrainerClient, weights: WeightsState, tell: 'tell' | 'quiet'): Promise<void> {
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
      const result = await client.request('loadCheckpoint', { path: this.store.records.checkpointPath(runId), runId });
      this.setWeights(result.weights);
      this.log.info(`reloaded ${this.store.weightsText(result.weights)} into the trainer from its checkpoint`);
      if (tell === 'tell') void showInfo(`FedKSeed: the trainer restarted; ${this.store.weightsText(result.weights)} reloaded from its checkpoint.`);
    } catch (err) {
      this.setWeights(baseWeights);
      void showWarning(`FedKSeed: the weights ${what} could not be reloaded (${unwrap(err).message}); the trainer holds the base model.`);
    }
  }

  /** A model or tokenizer that is not there is named with its setting and where it is set, with a way out. */
  private checkEnginePaths(s: FedKSeedSettings): void {
    const model = s.engine.model;
    const selectModel: ErrorAction = { title: 'Select Model…', command: 'fedkseed.selectModel' };
    // A path that is not there (an org/name id of the Hugging Face cache is the trainer's to find).
    if (model && isAbsolute(model) && !existsSync(model)) throw settingError('model.path', `model file not found: ${model}`, [selectModel]);
    const tokenizer = s.engine.tokenizer;
    if (tokenizer && !existsSync(tokenizer)) throw settingError('model.tokenizerPath', `tokenizer not found: ${tokenizer}`);
  }

  private async prepare(p: TrainerProcess): Promise<TrainerClient> {
    const c = p.connection;
    c.onNotification(Notifications.status, (status) => this.store.setTrainer(status));
    c.onNotification(Notifications.steps, (batch) => this.store.addSteps(batch));
    c.onNotification(Notifications.evaluation, (e) => this.store.addEvaluation(e));
    c.onNotification(Notifications.metrics, (m) => this.store.addMetrics(m));
    c.onNotification(Notifications.roundCompleted, (r) => {
      this.store.addRound(r);
      const line = this.store.roundLogLine(r.round);
      if (line) this.log.info(line);
    });
    c.onNotification(Notifications.seedProbabilities, (s) => this.store.setSeeds(s));
    c.onNotification(Notifications.log, (m) => this.log[m.level](`[trainer] ${m.message}`));
    const client = trainerClient(c);
    this.engine = await client.request('initialize', readSettings().engine);
    // By its name ("tiny-code-lm", a model's folder), not its file's ("model.onnx").
    this.store.setModel(modelDisplayName(this.engine.modelPath));
    // A new trainer holds the base model: fine-tuned weights it had before come back from their checkpoint.
    const held = this.weights;
    this.setWeights(baseWeights);
    if (held && held.kind !== 'base') await this.reloadWeights(client, held, 'quiet');
    return client;
  }

  private updateContext(): void {
    void vscode.commands.executeCommand('setContext', ContextKeys.training, this.job === 'training' || this.job === 'federation');
    void vscode.commands.executeCommand('setContext', ContextKeys.connected, this.job === 'federation');
  }
}
