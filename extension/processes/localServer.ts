// The local federation server: one supervised process started from the settings (or again on an
// interrupted run's store and port), its events mirrored into the RunStore, the `serverRunning`
// context key, and the answer to "did its federation finish?" that Start Local Federation asks.
import { readdirSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { parseWith } from '../../contracts/parse';
import { roundsDoneText } from '../../contracts/run-figures';
import { serverProcessSpecSchema, type ServerProcessSpec, type ServerProgress } from '../../contracts/server-process';
import { readSettings } from '../config';
import { UserFacingError } from '../errors';
import { ContextKeys } from '../ids';
import type { RunStore } from '../state/runStore';
import { unwrap } from './processErrors';
import { ServerProcess } from './serverProcess';
import { Supervisor } from './supervisor';

/** Where the local federation server listens. */
export interface LocalServerAddress {
  readonly url: string;
  readonly port: number;
}

export class LocalServer implements vscode.Disposable {
  private readonly supervisor: Supervisor<ServerProcess, LocalServerAddress>;
  /** What the server process is started with; a restart after a crash reuses it (same store, same port). */
  private spec: ServerProcessSpec | undefined;
  private info: LocalServerAddress | undefined;
  /** The server said its federation finished (every round committed). */
  private finished = false;
  /** When the server (last) started listening: the runs since then are its. */
  private startedAt = 0;
  /** The server's events, newest last (the extension-host tests compare its byte counts). */
  readonly events: ServerProgress[] = [];
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    script: string,
    /** Where each new federation's store goes (older ones are removed unless a run may resume them). */
    private readonly storageRoot: string,
    private readonly store: RunStore,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.supervisor = new Supervisor({
      role: 'federation server',
      log,
      launch: () =>
        ServerProcess.start(
          script,
          this.currentSpec(),
          (line) => log.info(`[federation server] ${line}`),
          (e) => this.onProgress(e),
        ),
      prepare: (p) => this.prepare(p),
    });
    this.disposables.push(
      this.supervisor,
      this.supervisor.onDidExitUnexpectedly(({ restarting }) => {
        if (!restarting) {
          this.spec = undefined;
          this.setInfo(undefined);
        }
      }),
    );
    this.updateContext();
  }

  get pid(): number | undefined {
    return this.supervisor.pid;
  }

  get url(): string | undefined {
    return this.info?.url;
  }

  /** The spec the server runs with (its bound port included), for a run to resume it. */
  get runningSpec(): ServerProcessSpec | undefined {
    return this.info ? this.spec : undefined;
  }

  /** The server ran all its rounds: joining it again would train nothing. */
  get federationFinished(): boolean {
    if (!this.info) return false;
    const server = this.store.status.localServer;
    const url = this.info.url;
    // The server's own word, its rounds all committed, or a run of this window that it saw to the end.
    const ranToTheEnd = this.store.summaries.some(
      (r) => r.kind === 'federation' && r.server === url && r.state === 'finished' && r.startedAt >= this.startedAt,
    );
    return this.finished || (server !== null && server.rounds > 0 && server.committed >= server.rounds) || ranToTheEnd;
  }

  /**
   * The server of Start Local Federation: the running one while its federation goes on (this window
   * rejoins it); one that finished is stopped, and a new federation starts with the current settings.
   */
  async startForFederation(): Promise<LocalServerAddress> {
    if (this.federationFinished) {
      const server = this.store.status.localServer;
      this.log.info(
        `the local federation at ${this.info?.url ?? '?'} finished${server ? ` (${roundsDoneText(server.committed, server.rounds)})` : ''}: it is stopped, and a new one starts with the current settings`,
      );
      await this.stop();
    }
    return this.start();
  }

  /** Starts the server from the settings, or again from `resume` (an interrupted run's: its store and port). */
  async start(resume?: ServerProcessSpec): Promise<LocalServerAddress> {
    if (this.info && resume && this.spec?.storePath !== resume.storePath) {
      throw new UserFacingError('another local federation server is running: stop it first, then resume the run (its own server restarts on its store)', [
        { title: 'Stop Local Server', command: 'fedkseed.stopLocalServer' },
      ]);
    }
    if (this.info) return this.info;
    if (resume) {
      this.spec = resume;
      try {
        return await this.supervisor.ready();
      } catch {
        // Its port was taken meanwhile: the same store on any free port.
        this.spec = { ...resume, port: 0 };
        try {
          return await this.supervisor.ready();
        } catch (err) {
          this.spec = undefined;
          throw unwrap(err);
        }
      }
    }
    const s = readSettings();
    mkdirSync(this.storageRoot, { recursive: true });
    const root = this.storageRoot;
    // Each start is a new federation; older stores are removed unless a run may still resume them.
    const keep = new Set(
      this.store.summaries
        .filter((r) => r.state === 'interrupted')
        .map((r) => this.store.recordOf(r.id)?.resume)
        .flatMap((x) => (x?.kind === 'federation' && x.localServer ? [x.localServer.storePath] : [])),
    );
    for (const old of readdirSync(root)) if (!keep.has(join(root, old))) rmSync(join(root, old), { recursive: true, force: true });
    const spec = parseWith(serverProcessSpecSchema, {
      config: {
        k: s.training.k,
        federationSeed: s.training.federationSeed,
        epsilon: s.training.epsilon,
        eta: s.training.eta,
        shape: s.training.shape,
        ...(s.training.generator === 'iid' ? {} : { generator: s.training.generator }),
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
    this.spec = spec.value;
    try {
      return await this.supervisor.ready();
    } catch (err) {
      this.spec = undefined;
      throw unwrap(err);
    }
  }

  async stop(): Promise<boolean> {
    const wasRunning = this.info !== undefined;
    this.spec = undefined;
    await this.supervisor.stop();
    this.setInfo(undefined);
    return wasRunning;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }

  private currentSpec(): ServerProcessSpec {
    if (!this.spec) throw new Error('the local federation server has no settings to start with');
    return this.spec;
  }

  private async prepare(p: ServerProcess): Promise<LocalServerAddress> {
    const { url, port } = await p.listening;
    const spec = this.currentSpec();
    // A restart after a crash binds the same port again, so clients reconnect where they were.
    this.spec = { ...spec, port };
    this.setInfo({ url, port }, spec.config.rounds);
    return { url, port };
  }

  private onProgress(e: ServerProgress): void {
    this.log.info(`[server] ${e.detail}`);
    this.events.push(e);
    if (e.event === 'finished') this.finished = true;
    if (this.events.length > 500) this.events.shift();
    const before = this.store.status.localServer;
    if (!this.info) return;
    // Rounds done are the committed ones; the round running is the one started and not yet committed.
    const committed = e.event === 'roundStarted' ? Math.max(before?.committed ?? 0, e.round - 1) : e.round;
    const inProgress = e.event === 'roundStarted' ? e.round : e.event === 'roundCommitted' || e.event === 'finished' ? null : (before?.inProgress ?? null);
    this.store.setLocalServer({ url: this.info.url, committed, inProgress, rounds: e.rounds, clients: e.clients });
  }

  private setInfo(info: LocalServerAddress | undefined, rounds = 0): void {
    if (info && info.url !== this.info?.url) this.startedAt = Date.now();
    this.info = info;
    this.finished = false;
    this.store.setLocalServer(info ? { url: info.url, committed: 0, inProgress: null, rounds, clients: 0 } : null);
    this.updateContext();
  }

  private updateContext(): void {
    void vscode.commands.executeCommand('setContext', ContextKeys.serverRunning, this.info !== undefined);
  }
}
