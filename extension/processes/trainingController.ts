// What the commands drive: one supervised trainer process (engine, local training, federation client)
// and one supervised server process (the local federation server). It mirrors their notifications and
// events into the RunStore, keeps the context keys that enable commands, and reloads the engine only
// when an engine setting changed.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as vscode from 'vscode';
import { type MessageConnection, ResponseError } from 'vscode-jsonrpc/node';
import * as z from 'zod/mini';
import {
  evaluateResultSchema,
  exportModelResultSchema,
  federationResultSchema,
  initializeResultSchema,
  Notifications,
  parsePayload,
  Requests,
  trainingResultSchema,
  type EvaluateResult,
  type ExportModelResult,
  type FederationResult,
  type InitializeResult,
  type TrainingResult,
} from '../../contracts/trainer-rpc';
import { CLIENT_DEFAULTS, TRAINING_DEFAULTS } from '../../contracts/defaults';
import { parseWith } from '../../contracts/parse';
import { serverProcessSpecSchema, type ServerProcessSpec, type ServerProgress } from '../../contracts/server-process';
import { readSettings, type FedKSeedSettings } from '../config';
import type { RunStore } from '../state/runStore';
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

type JobKind = 'training' | 'federation' | 'evaluation' | 'export';

/** A failure the user can act on; its message is shown as is. */
export class UserFacingError extends Error {}

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

/** JSON-RPC errors and the server's start failures carry the process's own message (e.g. "model file not found: /path"). */
function unwrap(err: unknown): Error {
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
      launch: () => TrainerProcess.start(bundle('trainer.js'), (line) => log.info(`[trainer] ${line}`)),
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
    await this.trainer.ready().catch((err: unknown) => {
      throw unwrap(err);
    });
    if (!this.engine) throw new Error('the trainer started without a model');
    return this.engine;
  }

  async evaluate(token?: vscode.CancellationToken): Promise<EvaluateResult> {
    const s = readSettings();
    const data = this.dataSpec(s, 0);
    return this.runJob('evaluation', async (c) =>
      checked(evaluateResultSchema, 'evaluate', await c.sendRequest(Requests.evaluate, { data, batchSize: s.training.batchSize, maxExamples: 64 }, token)),
    );
  }

  async startTraining(token?: vscode.CancellationToken): Promise<TrainingResult> {
    const s = readSettings();
    const data = this.dataSpec(s, s.data.heldOutFraction);
    const checkpointDir = this.storageDir('checkpoints');
    return this.runJob('training', async (c) => {
      this.store.clearHistory();
      const params = {
        data,
        steps: s.training.steps,
        k: s.training.k,
        federationSeed: s.training.federationSeed,
        epsilon: s.training.epsilon,
        eta: s.training.eta,
        batchSize: s.training.batchSize,
        evalEvery: s.training.evalEvery,
        evalExamples: TRAINING_DEFAULTS.evalExamples,
        checkpointPath: join(checkpointDir, 'latest.json'),
      };
      return checked(trainingResultSchema, 'startTraining', await c.sendRequest(Requests.startTraining, params, token));
    });
  }

  async joinFederation(url: string, token?: vscode.CancellationToken): Promise<FederationResult> {
    const s = readSettings();
    const data = this.dataSpec(s, s.data.heldOutFraction);
    const secret = (await this.context.secrets.get(TOKEN_SECRET)) ?? '';
    return this.runJob('federation', async (c) => {
      this.store.clearHistory();
      const params = { url, token: secret, clientId: this.clientId(), data, batchSize: s.training.batchSize, heldOutExamples: CLIENT_DEFAULTS.heldOutExamples, clientSeed: 0 };
      return checked(federationResultSchema, 'joinFederation', await c.sendRequest(Requests.joinFederation, params, token));
    });
  }

  /** Stops local training or leaves the federation; resolves once the trainer has stopped the job. */
  async stop(): Promise<boolean> {
    if (!this.job || !this.trainer.running) return false;
    const c = await this.trainer.ready();
    const result = await c.sendRequest(Requests.stop, {});
    return result.stopped;
  }

  async exportModel(out: string): Promise<ExportModelResult> {
    return this.runJob('export', async (c) => checked(exportModelResultSchema, 'exportModel', await c.sendRequest(Requests.exportModel, { out })));
  }

  async setToken(token: string): Promise<void> {
    await this.context.secrets.store(TOKEN_SECRET, token);
  }

  async hasToken(): Promise<boolean> {
    return Boolean(await this.context.secrets.get(TOKEN_SECRET));
  }

  async startLocalServer(): Promise<LocalServerAddress> {
    if (this.serverInfo) return this.serverInfo;
    const s = readSettings();
    const root = this.storageDir('local-server');
    // Each start is a new federation; older stores are removed (a crash restart reuses the current one).
    for (const old of readdirSync(root)) rmSync(join(root, old), { recursive: true, force: true });
    const spec = parseWith(serverProcessSpecSchema, {
      config: {
        k: s.training.k,
        federationSeed: s.training.federationSeed,
        epsilon: s.training.epsilon,
        eta: s.training.eta,
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
    for (const d of this.disposables) d.dispose();
  }

  private async runJob<T>(kind: JobKind, body: (connection: MessageConnection) => Promise<T>): Promise<T> {
    if (this.job) throw new UserFacingError(`FedKSeed is busy with ${this.job}; stop it first.`);
    this.job = kind;
    this.updateContext();
    try {
      await this.loadEngine();
      const connection = await this.trainer.ready();
      return await body(connection);
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
    c.onNotification(Notifications.roundCompleted, (r) => this.store.addRound(r));
    c.onNotification(Notifications.seedProbabilities, (p) => this.store.setSeeds(p));
    c.onNotification(Notifications.log, (m) => this.log[m.level](`[trainer] ${m.message}`));
    const settings = readSettings();
    const result = await c.sendRequest(Requests.initialize, settings.engine);
    this.engine = checked(initializeResultSchema, 'initialize', result);
    this.store.setModel(basename(this.engine.modelPath));
    return c;
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
    if (this.serverInfo) this.store.setLocalServer({ url: this.serverInfo.url, round: e.round, rounds: e.rounds, clients: e.clients });
  }

  private setServer(info: LocalServerAddress | undefined, rounds = 0): void {
    this.serverInfo = info;
    this.store.setLocalServer(info ? { url: info.url, round: 0, rounds, clients: 0 } : null);
    this.updateContext();
  }

  private dataSpec(s: FedKSeedSettings, heldOutFraction: number) {
    if (!s.data.path) throw new UserFacingError('No dataset: open a folder or run "FedKSeed: Select Dataset".');
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
