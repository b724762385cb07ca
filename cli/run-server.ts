// The federation server as a process of its own (bundled to dist/run-server.js), to the contract of
// contracts/server-process.ts: its spec in argv[2], its events as JSON lines on stdout, logs on
// stderr. The extension runs its local federation server this way; so do benchmarks and the crash test.
import {
  parseServerProcessSpec,
  serverProcessEventLine,
  type ServerProcessEvent,
  type ServerProcessSpec,
  type ServerProcessStats,
  type ServerProgress,
} from '../contracts/server-process';
import { PgFederationStore } from '../federation/pg-store';
import { startServer, type FederationServer } from '../federation/server';
import type { FederationStore } from '../federation/store';
import { GENERATOR_VERSION } from '../trainer/zo/generator';
import { readBaseModel } from './base-model';
import { errorMessage } from '../protocol/errors';

const emit = (event: ServerProcessEvent): void => void process.stdout.write(serverProcessEventLine(event));
const say = (line: string): void => void process.stderr.write(`${line}\n`);

function fail(message: string, addressInUse: boolean): void {
  say(`cannot start the federation server: ${message}`);
  emit({ event: 'failed', message, addressInUse });
  process.exitCode = 1;
}

/** A shared store this process opened (a gateway's), closed after the server. */
let shared: FederationStore | undefined;

async function start(spec: ServerProcessSpec): Promise<FederationServer> {
  const model = 'path' in spec.model ? await readBaseModel(spec.model.path || undefined) : spec.model;
  if (spec.storeUrl) shared = await PgFederationStore.open(spec.storeUrl);
  return startServer({
    config: spec.config,
    modelHash: Buffer.from(model.identity, 'hex'),
    generatorVersion: spec.generatorVersion ?? GENERATOR_VERSION,
    paramCount: model.parameters,
    storePath: spec.storePath,
    store: shared,
    host: spec.host,
    port: spec.port ?? 0,
    requireToken: spec.requireToken,
    minClients: spec.minClients,
    limits: spec.maxConnections ? { maxConnections: spec.maxConnections, helloTimeoutMs: 600_000 } : undefined,
  });
}

/** The federation's progress as event lines, in words a supervisor can log as they are. */
function narrate(server: FederationServer, rounds: number): void {
  const send = (event: ServerProgress['event'], round: number, detail: string) => emit({ event, round, rounds, clients: server.stats().clients, detail });
  server.events.on('clientJoined', (e) => send('clientJoined', server.stats().committedRound, `client ${e.clientId} joined`));
  server.events.on('clientLeft', (e) => send('clientLeft', server.stats().committedRound, `client ${e.clientId} left: ${e.reason}`));
  server.events.on('roundStarted', (e) => send('roundStarted', e.round, `round ${e.round} started with ${e.clients.length} client(s)`));
  server.events.on('roundCommitted', (e) =>
    send(
      'roundCommitted',
      e.round,
      `round ${e.round} committed: loss ${e.lossBefore.toFixed(4)} → ${e.lossAfter.toFixed(4)}, ${e.bytes.up + e.bytes.down} bytes`,
    ),
  );
  server.events.on('finished', (e) => send('finished', e.round, `the federation finished after round ${e.round}`));
}

async function main(): Promise<void> {
  const parsed = parseServerProcessSpec(process.argv[2] ?? '');
  if (!parsed.ok) return fail(`invalid server spec: ${parsed.error}`, false);
  const spec = parsed.value;
  let server: FederationServer;
  try {
    server = await start(spec);
  } catch (err) {
    await shared?.close().catch(() => undefined);
    const addressInUse = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
    return fail(errorMessage(err), addressInUse);
  }
  const { config } = spec;
  narrate(server, config.rounds);
  emit({ event: 'listening', url: server.url, port: server.port });
  say(`federation server ${process.pid} listening on ${server.url} (K = ${config.k}, ${config.rounds} rounds, ${config.clientsPerRound} clients per round)`);

  process.on('message', () => process.send?.({ rss: process.memoryUsage().rss, connections: server.stats().connections } satisfies ServerProcessStats));
  let closing = false;
  const close = (why: string): void => {
    if (closing) return;
    closing = true;
    say(`closing the federation server: ${why} (state is committed after every round)`);
    // The store's close is bounded: a stuck close must not keep a stopped server alive.
    setTimeout(() => process.exit(0), 3000).unref();
    void server
      .close()
      .then(() => shared?.close())
      .then(() => process.exit(0));
  };
  process.on('SIGTERM', () => close('SIGTERM'));
  process.on('SIGINT', () => close('SIGINT'));
  if (spec.exitWithStdin) {
    process.stdin.on('end', () => close('stdin ended'));
    process.stdin.resume();
  }
}

void main();
