// Entry of the trainer child process (bundled to dist/trainer.js). It speaks JSON-RPC on stdin/stdout
// (vscode-jsonrpc), so stdout carries protocol messages only: every log line goes to stderr, which the
// extension shows in its "FedKSeed" output channel. The process exits when stdin closes, so it never
// outlives the extension that started it.
import { format } from 'node:util';
import { CancellationToken, createMessageConnection, ResponseError, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { connectionNotifier } from './notifier';
import { Notifications, TrainerErrorCodes, TrainerMethods } from '../../contracts/trainer-rpc';
import { HostStateError, TrainerSession } from './session';
import { errorMessage } from '../../protocol/errors';
import { ConnectionFailedError } from './connection-failure';
import { serve } from './serve';

// A stack from the bundle reads as its sources when the bundle's source map is beside it.
process.setSourceMapsEnabled?.(true);

// Anything (a dependency included) that writes with console.* must not corrupt the protocol stream.
const toStderr = (...args: unknown[]): void => void process.stderr.write(`${format(...args)}\n`);
console.log = console.info = console.debug = console.warn = console.error = toStderr;

const connection = createMessageConnection(new StreamMessageReader(process.stdin), new StreamMessageWriter(process.stdout));
const session = new TrainerSession(connectionNotifier(connection));

function abortSignalOf(token: CancellationToken): AbortSignal {
  const abort = new AbortController();
  if (token.isCancellationRequested) abort.abort();
  else token.onCancellationRequested(() => abort.abort());
  return abort.signal;
}

/** What a handler threw, as a JSON-RPC error the extension can show as is. */
function responseErrorOf(err: unknown): ResponseError<unknown> {
  if (err instanceof ResponseError) return err;
  if (err instanceof HostStateError) return new ResponseError(TrainerErrorCodes[err.reason], err.message);
  if (err instanceof ConnectionFailedError) return new ResponseError(TrainerErrorCodes.connectionFailed, err.message, err.failure);
  return new ResponseError(TrainerErrorCodes.failed, errorMessage(err));
}

/**
 * Runs a request's work and turns what it throws into a JSON-RPC error. The log gets the message; the
 * stack goes to the extension at debug level (it helps a developer, not a user). Completions come with
 * every pause in typing: answered without the per-request log line.
 */
async function answer<T>(method: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const quiet = method === 'complete';
  try {
    const result = await work();
    if (!quiet) toStderr(`[host] ${method} done in ${Date.now() - started} ms`);
    return result;
  } catch (err) {
    const known = err instanceof ResponseError || err instanceof HostStateError;
    if (!(quiet && known)) toStderr(`[host] ${method} failed: ${errorMessage(err)}`);
    if (!quiet && err instanceof Error && err.stack && !known && !(err instanceof ConnectionFailedError)) {
      void connection.sendNotification(Notifications.log, { level: 'debug', message: `${method} failed at: ${err.stack}` }).catch(() => undefined);
    }
    throw responseErrorOf(err);
  }
}

serve(
  connection,
  TrainerMethods,
  {
    initialize: (params) => session.initialize(params),
    evaluate: (params, token) => session.evaluate(params, abortSignalOf(token)),
    startTraining: (params, token) => session.startTraining(params, abortSignalOf(token)),
    joinFederation: (params, token) => session.joinFederation(params, abortSignalOf(token)),
    stop: async () => ({ stopped: session.stop() }),
    exportModel: (params) => session.exportModel(params),
    loadCheckpoint: (params) => session.loadRunCheckpoint(params),
    resetWeights: () => session.resetWeights(),
    complete: (params, token) => session.complete(params, abortSignalOf(token)),
  },
  answer,
);

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
