// The local federation server, run inside a trainer host process of its own (so training's blocking
// forward passes never delay its heartbeats). It binds where it is told: the extension asks for
// 127.0.0.1 only.
import { startServer, type FederationServer } from '../../federation/server';
import { loadModel } from '../model';
import { resolveModelPaths } from '../paths';
import { GENERATOR_VERSION } from '../zo/generator';
import type { HostNotifier } from './notifier';
import type { StartServerParams, StartServerResult } from '../../contracts/trainer-payloads';

export class LocalServer {
  private server: FederationServer | undefined;
  private rounds = 0;

  constructor(private readonly notify: HostNotifier) {}

  get running(): boolean {
    return this.server !== undefined;
  }

  async start(params: StartServerParams): Promise<StartServerResult> {
    if (this.server) throw new Error(`a federation server is already running at ${this.server.url}`);
    const model = await loadModel(resolveModelPaths(params.model || undefined).model);
    const paramCount = model.weights.reduce((n, w) => n + w.data.length, 0);
    let server: FederationServer;
    try {
      server = await startServer({
        config: {
          k: params.k,
          federationSeed: params.federationSeed,
          epsilon: params.eps,
          eta: params.eta,
          tau: params.tau,
          batchSize: params.batchSize,
          sampling: params.sampling,
          weighting: 'examples',
          rounds: params.rounds,
          clientsPerRound: params.clientsPerRound,
          deadlineMs: params.deadlineMs,
        },
        modelHash: Buffer.from(model.identity, 'hex'),
        generatorVersion: GENERATOR_VERSION,
        paramCount,
        storePath: params.storePath,
        host: params.host,
        port: params.port,
        requireToken: params.requireToken,
        minClients: params.minClients,
      });
    } catch (err) {
      // The server names a taken port; say where its port comes from.
      const taken = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
      throw taken ? new Error(`${(err as Error).message}: choose another fedkseed.localServer.port, or 0 for any free port`, { cause: err }) : err;
    }
    this.server = server;
    this.rounds = params.rounds;
    this.forwardEvents(server);
    this.notify.log('info', `federation server listening on ${server.url} (K = ${params.k}, ${params.rounds} rounds, ${params.clientsPerRound} clients per round)`);
    return { url: server.url, port: server.port };
  }

  async stop(): Promise<boolean> {
    const server = this.server;
    if (!server) return false;
    this.server = undefined;
    await server.close();
    this.notify.log('info', 'federation server stopped');
    return true;
  }

  private forwardEvents(server: FederationServer): void {
    const send = (kind: 'clientJoined' | 'clientLeft' | 'roundStarted' | 'roundCommitted' | 'finished', round: number, detail: string) =>
      this.notify.serverEvent({ kind, round, rounds: this.rounds, clients: server.stats().clients, detail });
    server.events.on('clientJoined', (e) => send('clientJoined', server.stats().committedRound, `client ${e.clientId} joined`));
    server.events.on('clientLeft', (e) => send('clientLeft', server.stats().committedRound, `client ${e.clientId} left: ${e.reason}`));
    server.events.on('roundStarted', (e) => send('roundStarted', e.round, `round ${e.round} started with ${e.clients.length} client(s)`));
    server.events.on('roundCommitted', (e) =>
      send('roundCommitted', e.round, `round ${e.round} committed: loss ${e.lossBefore.toFixed(4)} → ${e.lossAfter.toFixed(4)}, ${e.bytes.up + e.bytes.down} bytes`),
    );
    server.events.on('finished', (e) => send('finished', e.round, `the federation finished after round ${e.round}`));
  }
}
