// The contract of the federation server process (cli/run-server.ts, bundled to dist/run-server.js):
// what it is started with and what it prints. Its spec is one JSON argument (argv[2]); it prints one
// JSON event per line on stdout (logs go to stderr), first `listening` or `failed`, then the
// federation's progress. With an IPC channel (fork), any message is answered with its stats.
// Whoever starts it (the extension's local server, benchmarks, tests) and the process itself check
// both with these schemas.
import * as z from 'zod/mini';
import { federationConfigSchema } from './hyperparameters';
import { parseJsonLine, parseWith, type ParseResult } from './parse';
import { errorMessage } from '../protocol/errors';

const nonNegInt = () => z.number().check(z.int(), z.nonnegative());
const positiveInt = () => z.number().check(z.int(), z.positive());

export { federationConfigSchema } from './hyperparameters';

/** The base model every client must hold: a model file the process reads, or its identity and size. */
export const serverModelSchema = z.union([
  /** An .onnx file or a folder holding model.onnx; empty: the bundled model. */
  z.object({ path: z.string() }),
  z.object({
    /** SHA-256 of the model (hex). */
    identity: z.string().check(z.regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits')),
    parameters: positiveInt(),
  }),
]);
export type ServerModel = z.infer<typeof serverModelSchema>;

export const serverProcessSpecSchema = z.object({
  config: federationConfigSchema,
  model: serverModelSchema,
  /** Generator version the clients must run; default: this build's. */
  generatorVersion: z.optional(positiveInt()),
  /** The server's LevelDB store: a restart on the same store resumes its federation. */
  storePath: z.string().check(z.minLength(1)),
  /**
   * Instead of storePath: a PostgreSQL store shared with other gateways, as a postgres:// URL without a
   * password (PGPASSWORD or ~/.pgpass in the process's environment give it).
   */
  storeUrl: z.optional(z.string().check(z.regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'))),
  /** Default 127.0.0.1. */
  host: z.optional(z.string().check(z.minLength(1))),
  /** Default 0: any free port (the `listening` event names the one bound). */
  port: z.optional(z.number().check(z.int(), z.gte(0), z.lte(65535))),
  /** When false any token is accepted (a trusted loopback federation). */
  requireToken: z.boolean(),
  /** Connected clients needed before a round starts (default: clients per round). */
  minClients: z.optional(positiveInt()),
  maxConnections: z.optional(positiveInt()),
  /** Stop when stdin ends: a parent that keeps stdin open takes the server with it when it goes away. */
  exitWithStdin: z.optional(z.boolean()),
});
export type ServerProcessSpec = z.infer<typeof serverProcessSpecSchema>;

export const serverListeningSchema = z.object({
  event: z.literal('listening'),
  url: z.string(),
  port: positiveInt(),
});
export type ServerListening = z.infer<typeof serverListeningSchema>;

/** The server could not start (it exits 1 after this line). */
export const serverFailedSchema = z.object({
  event: z.literal('failed'),
  message: z.string(),
  /** The port is taken: the caller may name where its port comes from. */
  addressInUse: z.boolean(),
});
export type ServerFailed = z.infer<typeof serverFailedSchema>;

export const federationProgressKinds = ['clientJoined', 'clientLeft', 'roundStarted', 'roundCommitted', 'finished'] as const;

/** The federation's progress, in the server's words: what a supervisor logs and shows. */
export const serverProgressSchema = z.object({
  event: z.enum(federationProgressKinds),
  /** The round the event is about (the last committed one for joins and leaves). */
  round: nonNegInt(),
  rounds: nonNegInt(),
  /** Clients connected now. */
  clients: nonNegInt(),
  detail: z.string(),
});
export type ServerProgress = z.infer<typeof serverProgressSchema>;

export const serverProcessEventSchema = z.union([serverListeningSchema, serverFailedSchema, serverProgressSchema]);
export type ServerProcessEvent = z.infer<typeof serverProcessEventSchema>;

/** The answer to any IPC message. */
export const serverProcessStatsSchema = z.object({
  rss: nonNegInt(),
  connections: nonNegInt(),
});
export type ServerProcessStats = z.infer<typeof serverProcessStatsSchema>;

export function parseServerProcessSpec(json: string): ParseResult<ServerProcessSpec> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    return { ok: false, error: `not JSON: ${errorMessage(err)}` };
  }
  return parseWith(serverProcessSpecSchema, value);
}

/** A server event from one line of its stdout, or null for anything else. */
export function parseServerProcessEvent(line: string): ServerProcessEvent | null {
  return parseJsonLine(serverProcessEventSchema, line);
}

export function serverProcessEventLine(event: ServerProcessEvent): string {
  return `${JSON.stringify(event)}\n`;
}
