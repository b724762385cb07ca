// The trainer as the extension uses it: one supervised process behind the typed client of
// contracts/trainer-rpc.ts, its notifications mirrored into the RunStore, at most one command using it
// at a time (with the context keys that enable commands), the engine reloaded only when an engine
// setting changed. Which weights the trainer holds and which job it runs are the trainer's to say: its
// status carries them, and this reads them there. What stays here is what a trainer process cannot know:
// the fine-tuned weights to put back, from their run's checkpoint, into a new process after a restart.
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import * as vscode from 'vscode';
import {
  describeWeights,
  idleTrainerStatus,
  Notifications,
  trainerClient,
  type CompleteParams,
  type CompleteResult,
  type InitializeResult,
  type TrainerClient,
  type TrainerStatus,
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
  /**
   * The command using the trainer, from before its request is sent (the trainer may still be starting)
   * until its results are recorded: the lock that keeps commands one at a time. What the trainer itself
   * runs is its status's `job`.
   */
  private job: JobKind | undefined;
  /** The last status the trainer process sent (of the one before, until a new one has sent its own). */
  private reported: TrainerStatus | undefined;
  /** Fine-tuned weights the trainer is to hold again, from their run's checkpoint, once it runs (or at once). */
  private toReload: WeightsState | null = null;
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
        // Its job ended with it; the weights it held are shown until a new one says what it holds.
        this.store.setTrainer({
          ...this.store.status.trainer,
          state: 'error',
          job: null,
          detail: 'The trainer process exited unexpectedly; see the FedKSeed log.',
        });
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

  /**
   * The weights the trainer holds, as its last status said, once it has loaded a model; while it is to be
   * given fine-tuned weights back (a restart, a failed run), those.
   */
  get currentWeights(): WeightsState | null {
    return this.toReload ?? this.reported?.weights ?? null;
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
    if (before.state === 'error') this.store.setTrainer({ ...idleTrainerStatus, provider: before.provider, weights: before.weights });
  }

  /**
   * Gives the trainer back fine-tuned weights it dropped or left unsound (a run that failed), from their
   * run's checkpoint: at once when it runs, else when it starts again.
   */
  async restoreWeights(weights: WeightsState | null): Promise<void> {
    if (!weights || weights.kind === 'base') return;
    this.toReload = weights;
    if (this.supervisor.running) await this.reloadWeights(await this.supervisor.ready(), 'quiet');
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }

  /**
   * Puts the fine-tuned weights to reload back into a (new) trainer from their run's checkpoint; its status
   * then says what it holds. A checkpoint of another base model cannot be: the user is told which weights
   * are not loaded and why, never left to guess.
   */
  private async reloadWeights(client: TrainerClient, tell: 'tell' | 'quiet'): Promise<void> {
    const weights = this.toReload;
    if (!weights) return;
    const engine = this.engine;
    const runId = weights.runId;
    const header = runId ? this.store.records.checkpointHeader(runId) : undefined;
    const run = runId ? this.store.recordOf(runId) : undefined;
    const what = `${describeWeights(weights)}${run ? ` of "${run.summary.title}"` : ''}`;
    if (!engine || !runId || !header) {
      this.toReload = null;
      void showWarning(`FedKSeed: the trainer restarted and holds the base model; the weights ${what} have no checkpoint to reload.`);
      return;
    }
    if (header.baseModel !== engine.modelIdentity) {
      this.toReload = null;
      void showWarning(
        `FedKSeed: the trainer now holds ${modelDisplayName(engine.modelPath)} (base). The weights ${what} belong to ${run?.summary.model ?? 'another model'} and were not loaded; they stay in the run list.`,
      );
      return;
    }
    try {
      const result = await client.request('loadCheckpoint', { path: this.store.records.checkpointPath(runId), runId });
      this.toReload = null;
      this.log.info(`reloaded ${this.store.weightsText(result.weights)} into the trainer from its checkpoint`);
      if (tell === 'tell') void showInfo(`FedKSeed: the trainer restarted; ${this.store.weightsText(result.weights)} reloaded from its checkpoint.`);
    } catch (err) {
      // A trainer that went away meanwhile leaves them to the next one; else they stay in the run list.
      if (!this.supervisor.running) return;
      this.toReload = null;
      const held = this.currentWeights;
      void showWarning(
        `FedKSeed: the weights ${what} could not be reloaded (${unwrap(err).message}); the trainer holds ${held ? this.store.weightsText(held) : 'no model'}.`,
      );
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
    // A new trainer holds no weights until it has loaded the base model (its status says so): fine-tuned
    // weights the one before held (or was to be given back) come back from their checkpoint.
    const held = this.toReload ?? this.reported?.weights ?? null;
    this.toReload = held && held.kind !== 'base' ? held : null;
    this.reported = undefined;
    const c = p.connection;
    c.onNotification(Notifications.status, (status) => {
      this.reported = status;
      this.store.setTrainer(status);
    });
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
    await this.reloadWeights(client, 'quiet');
    return client;
  }

  private updateContext(): void {
    void vscode.commands.executeCommand('setContext', ContextKeys.training, this.job === 'training' || this.job === 'federation');
    void vscode.commands.executeCommand('setContext', ContextKeys.connected, this.job === 'federation');
  }
}
