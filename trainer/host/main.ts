// Entry of the trainer child process (bundled to dist/trainer.js). It speaks JSON-RPC on stdin/stdout
// (vscode-jsonrpc), so stdout carries protocol messages only: every log line goes to stderr, which the
// extension shows in its "FedKSeed" output channel. The process exits when stdin closes, so it never
// outlives the extension that started it.
import { format } from 'node:util';
import { CancellationToken, createMessageConnection, ResponseError, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import type * as z from 'zod/mini';
import { connectionNotifier } from './notifier';
import {
  emptySchema,
  evaluateParamsSchema,
  exportModelParamsSchema,
  initializeParamsSchema,
  joinFederationParamsSchema,
  loadCheckpointParamsSchema,
  parsePayload,
  Notifications,
  Requests,
  completeParamsSchema,
  resetWeightsParamsSchema,
  startTrainingParamsSchema,
  TrainerErrorCodes,
} from '../../contracts/trainer-rpc';
import { errorMessage, HostStateError, TrainerSession } from './session';
import { ConnectionFailedError } from './connection-failure';

// A stack from the bundle reads as its sources when the bundle's source map is beside it.
process.setSourceMapsEnabled?.(true);

// Anything (a dependency included) that writes with console.* must not corrupt the protocol stream.
const toStderr = (...args: unknown[]): void => void process.stderr.write(`${format(...args)}\n`);
console.log = console.info = console.debug = console.warn = console.error = toStderr;

const connection = createMessageConnection(new StreamMessageReader(process.stdin), new StreamMessageWriter(process.stdout));
const session = new TrainerSession(connectionNotifier(connection));

function validated<T>(schema: z.ZodMiniType<T>, method: string, input: unknown): T {
  const parsed = parsePayload(schema, input);
  if (!parsed.ok) throw new ResponseError(TrainerErrorCodes.invalidParams, `invalid ${method} parameters: ${parsed.error}`);
  return parsed.value;
}

function abortSignalOf(token: CancellationToken): AbortSignal {
  const abort = new AbortController();
  if (token.isCancellationRequested) abort.abort();
  else token.onCancellationRequested(() => abort.abort());
  return abort.signal;
}

/**
 * Runs a handler and turns what it throws into a JSON-RPC error the extension can show as is. The log
 * gets the message; the stack goes to the extension at debug level (it helps a developer, not a user).
 */
async function answer<T>(method: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    const result = await work();
    toStderr(`[host] ${method} done in ${Date.now() - started} ms`);
    return result;
  } catch (err) {
    toStderr(`[host] ${method} failed: ${errorMessage(err)}`);
    if (err instanceof Error && err.stack && !(err instanceof HostStateError) && !(err instanceof ConnectionFailedError)) {
      void connection.sendNotification(Notifications.log, { level: 'debug', message: `${method} failed at: ${err.stack}` }).catch(() => undefined);
    }
    if (err instanceof ResponseError) throw err;
    if (err instanceof HostStateError) throw new ResponseError(TrainerErrorCodes[err.reason], err.message);
    if (err instanceof ConnectionFailedError) throw new ResponseError(TrainerErrorCodes.connectionFailed, err.message, err.failure);
    throw new ResponseError(TrainerErrorCodes.failed, errorMessage(err));
  }
}

connection.onRequest(Requests.initialize, (params) =>
  answer('initialize', () => session.initialize(validated(initializeParamsSchema, 'initialize', params))),
);
connection.onRequest(Requests.evaluate, (params, token) =>
  answer('evaluate', () => session.evaluate(validated(evaluateParamsSchema, 'evaluate', params), abortSignalOf(token))),
);
connection.onRequest(Requests.startTraining, (params, token) =>
  answer('startTraining', () => session.startTraining(validated(startTrainingParamsSchema, 'startTraining', params), abortSignalOf(token))),
);
connection.onRequest(Requests.joinFederation, (params, token) =>
  answer('joinFederation', () => session.joinFederation(validated(joinFederationParamsSchema, 'joinFederation', params), abortSignalOf(token))),
);
connection.onRequest(Requests.stop, (params) =>
  answer('stop', async () => {
    validated(emptySchema, 'stop', params);
    return { stopped: session.stop() };
  }),
);
connection.onRequest(Requests.exportModel, (params) =>
  answer('exportModel', () => session.exportModel(validated(exportModelParamsSchema, 'exportModel', params))),
);
connection.onRequest(Requests.loadCheckpoint, (params) =>
  answer('loadCheckpoint', () => session.loadRunCheckpoint(validated(loadCheckpointParamsSchema, 'loadCheckpoint', params))),
);
connection.onRequest(Requests.resetWeights, (params) =>
  answer('resetWeights', () => {
    validated(resetWeightsParamsSchema, 'resetWeights', params);
    return session.resetWeights();
  }),
);

// Completions come with every pause in typing: answered without the per-request log line.
connection.onRequest(Requests.complete, async (params, token) => {
  try {
    return await session.complete(validated(completeParamsSchema, 'complete', params), abortSignalOf(token));
  } catch (err) {
    if (err instanceof ResponseError) throw err;
    if (err instanceof HostStateError) throw new ResponseError(TrainerErrorCodes[err.reason], err.message);
    toStderr(`[host] complete failed: ${errorMessage(err)}`);
    throw new ResponseError(TrainerErrorCodes.failed, errorMessage(err));
  }
});

let exiting = false;
async function shutdown(code: number, why: string): Promise<void> {
  if (exiting) return;
  exiting = true;
  toStderr(`[host] exiting: ${why}`);
  // Give teardown (stopping the job, closing the engine) a bounded time.
  const forced = setTimeout(() => process.exit(code), 3000);
  forced.unref();
  await session.dispose();
  process.exit(code);
}

connection.onClose(() => void shutdown(0, 'the extension closed the connection'));
process.stdin.on('end', () => void shutdown(0, 'stdin ended'));
process.on('SIGTERM', () => void shutdown(0, 'SIGTERM'));
process.on('uncaughtException', (err) => {
  toStderr(`[host] uncaught exception: ${err.message}`);
  toStderr(`${err.stack ?? ''}`.split('\n').slice(1).join('\n'));
  void shutdown(1, 'uncaught exception');
});
connection.listen();
toStderr(`[host] trainer ${process.pid} ready (Node ${process.version})`);
