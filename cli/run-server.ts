// Runs a federation server from a JSON description in argv[2] and prints `listening <url>` when ready:
// for supervising the server as a separate process (crash tests, benchmarks, scripts).
import { startServer } from '../federation/server';
import type { FederationConfig } from '../protocol';

interface RunServerSpec {
  readonly config: FederationConfig;
  readonly modelHashHex: string;
  readonly generatorVersion: number;
  readonly paramCount: number;
  readonly storePath: string;
  readonly port?: number;
  readonly minClients?: number;
  readonly maxConnections?: number;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as RunServerSpec;
  const server = await startServer({
    config: spec.config,
    modelHash: Buffer.from(spec.modelHashHex, 'hex'),
    generatorVersion: spec.generatorVersion,
    paramCount: spec.paramCount,
    storePath: spec.storePath,
    port: spec.port ?? 0,
    requireToken: false,
    minClients: spec.minClients,
    limits: spec.maxConnections ? { maxConnections: spec.maxConnections, helloTimeoutMs: 600_000 } : undefined,
  });
  server.events.on('roundCommitted', (e) => process.stdout.write(`committed ${e.round}\n`));
  process.stdout.write(`listening ${server.url}\n`);
  process.on('message', () => process.send?.({ rss: process.memoryUsage().rss, connections: server.stats().connections }));
  process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
}

void main();
