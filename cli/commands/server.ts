import { createWriteStream } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import type { Writable } from 'node:stream';
import { type Command, Option } from 'commander';
import { DEFAULT_ROBUSTNESS } from '../../federation/robust';
import { isPostgresUrl } from '../../federation/gateway/url';
import { StoreDamagedError } from '../../federation/level-store';
import { jsonLinesLogger } from '../../federation/log';
import { startServer, type FederationServer } from '../../federation/server';
import type { FederationStore } from '../../federation/store';
import { GENERATOR_VERSION } from '../../trainer/zo/generator';
import {
  GENERATORS,
  PERTURBATION_SHAPES,
  type FederationConfig,
  type Generator,
  type PerturbationShape,
  type SamplingMode,
  type Weighting,
} from '../../protocol';
import { FEDERATION_DEFAULTS, TRAINING_DEFAULTS } from '../../contracts/defaults';
import { readBaseModel } from '../base-model';
import { CliError } from '../errors';
import { openStoreSpec, storeName } from '../store-spec';
import { ignoreScratchFolder } from '../../contracts/node/scratch-folder';
import { suggest } from '../invocation';
import { registerServerBackup } from './server-backup';
import {
  deadlineSeconds,
  existingPath,
  hyperparameterArg,
  modelArgument,
  nonNegativeInt,
  positiveInt,
  positiveNumber,
  seedCount,
  storeArgument,
  uint32,
  writableFile,
} from '../options';
import { fixed, note, note as say } from '../output';
import { formatBytes } from '../../protocol/format';
import { printable } from '../../protocol/client-id';
import { MAX_TAU } from '../../protocol/config-limits';
import { errorMessage } from '../../protocol/errors';

interface ServerCliOptions {
  variant?: string;
  trainable?: string[];
  freeze?: string[];
  host: string;
  port: number;
  store: string;
  k: number;
  seed: number;
  epsilon: number;
  eta: number;
  shape: PerturbationShape;
  generator: Generator;
  tau: number;
  batchSize: number;
  sampling: SamplingMode;
  weighting: Weighting;
  rounds: number;
  clientsPerRound: number;
  minClients?: number;
  deadline: number;
  model?: string;
  auth: boolean;
  tlsCert?: string;
  tlsKey?: string;
  log?: string;
  exitWhenFinished?: boolean;
  clipG: number;
  maxG?: number;
  maxExamples: number;
  trustStore?: boolean;
  storePasswordFile?: string;
}

export function registerServer(program: Command): void {
  const server = program
    .command('server')
    .description('Run a federation server: rounds, client sampling, aggregation of (seed, g) pairs, Pro probabilities, durable state')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0: any free port)', nonNegativeInt, FEDERATION_DEFAULTS.port)
    .option(
      '--store <dir|url>',
      'federation state, rounds, tokens: a folder (the embedded store) or a postgres:// URL without a password (gateways sharing one database; docs/deploy.md)',
      storeArgument,
      FEDERATION_DEFAULTS.store,
    )
    .option(
      '--store-password-file <file>',
      'the database password for a postgres:// store (default: PGPASSWORD or ~/.pgpass)',
      existingPath('--store-password-file'),
    )
    .option('-k, --k <n>', 'number of shared seeds K (at most 65,536)', seedCount, TRAINING_DEFAULTS.k)
    .option('--seed <n>', 'federation seed: which K perturbation directions exist', uint32, TRAINING_DEFAULTS.federationSeed)
    .option('--epsilon <x>', 'perturbation scale ε', hyperparameterArg('epsilon'), TRAINING_DEFAULTS.epsilon)
    .option('--eta <x>', 'learning rate η', hyperparameterArg('eta'), FEDERATION_DEFAULTS.eta)
    .addOption(
      new Option('--shape <name>', "how z is scaled tensor by tensor, for every client: tensor-rms (by each tensor's scale) or isotropic (the paper's)")
        .choices(PERTURBATION_SHAPES)
        .default(FEDERATION_DEFAULTS.shape),
    )
    .addOption(
      new Option(
        '--generator <name>',
        "how z is generated, for every client: iid (every parameter hashed, the paper's) or rank1 (each matrix's z an outer product u·vᵀ: rounds apply faster at scale)",
      )
        .choices(GENERATORS)
        .default(FEDERATION_DEFAULTS.generator),
    )
    .option(
      '--tau <n>',
      `local ZO steps per client per round (τ, at most ${MAX_TAU.toLocaleString('en-US')})`,
      hyperparameterArg('tau'),
      FEDERATION_DEFAULTS.tau,
    )
    .option('--batch-size <n>', 'examples per local step', hyperparameterArg('batchSize'), TRAINING_DEFAULTS.batchSize)
    .addOption(
      new Option('--sampling <mode>', 'seed sampling: uniform (FedKSeed) or pro (FedKSeed-Pro)')
        .choices(['uniform', 'pro'])
        .default(FEDERATION_DEFAULTS.sampling),
    )
    .addOption(
      new Option('--weighting <mode>', 'aggregation weights: by examples or equal').choices(['examples', 'equal']).default(FEDERATION_DEFAULTS.weighting),
    )
    .option('--rounds <n>', 'rounds of the federation', hyperparameterArg('rounds'), FEDERATION_DEFAULTS.rounds)
    .option('--clients-per-round <n>', 'clients sampled per round', hyperparameterArg('clientsPerRound'), FEDERATION_DEFAULTS.clientsPerRound)
    .option('--min-clients <n>', 'connected clients needed before a round starts (default: clients per round)', positiveInt)
    .option('--deadline <seconds>', 'time a sampled client has to upload (1 s to 24.8 days)', deadlineSeconds, FEDERATION_DEFAULTS.deadlineSeconds)
    .option(
      '--model <path|id>',
      'base model every client must hold: a file, a model folder or an org/name id in the Hugging Face cache (default: the bundled tiny-code-lm); gives its identity and d',
      modelArgument,
    )
    .option('--variant <name>', 'which file of a model folder (as the clients pass it)')
    .option('--trainable <glob...>', 'the trainable parameters, as the clients choose them (part of the identity)')
    .option('--freeze <glob...>', 'parameters left untrained, as the clients choose them (part of the identity)')
    .option(
      '--clip-g <multiple>',
      "clip each upload's |g| at this multiple of the median |g| kept across rounds",
      positiveNumber,
      DEFAULT_ROBUSTNESS.gClipMultiple,
    )
    .option('--max-g <x>', 'clip every |g| at this bound as well (default: none)', positiveNumber)
    .option(
      '--max-examples <n>',
      'cap on the example count one upload may claim (also capped at 4× the median claim kept across rounds)',
      positiveInt,
      DEFAULT_ROBUSTNESS.maxExamples,
    )
    .option(
      '--trust-store',
      'accept a store whose integrity record is missing or disagrees with its content, and record it anew (only after checking the store otherwise; never needed for an undamaged store; round records or state vectors that fail their own hashes are refused still)',
    )
    .option('--no-auth', 'accept any token (a local, trusted federation)')
    .option('--tls-cert <file>', 'serve wss:// with this certificate (PEM)', existingPath('--tls-cert'))
    .option('--tls-key <file>', 'private key of --tls-cert (PEM)', existingPath('--tls-key'))
    .option('--log <file>', "JSON-lines log to this file ('-': stderr, instead of the readable progress lines)", (v: string) =>
      v === '-' ? v : writableFile('--log')(v),
    )
    .option('--exit-when-finished', 'stop once the last round is committed and connected clients have the final model')
    .action((o: ServerCliOptions) => runServer(o));
  registerServerBackup(server);
}

/** What to do when --port cannot be had: another port, or any free one. */
function portFix(o: ServerCliOptions, code: string | undefined): string {
  const other = o.port === 65_535 ? o.port - 1 : o.port + 1;
  if (code === 'EADDRINUSE') return `port ${o.host}:${o.port} is already in use (EADDRINUSE); pass another port (--port ${other}) or --port 0 for any free one`;
  if (code === 'EACCES') return `port ${o.host}:${o.port} needs privileges (EACCES); pass --port 1024 or above, or --port 0 for any free one`;
  return `cannot listen on ${o.host}:${o.port} (${code ?? 'unknown error'}); pass another --port, or --port 0 for any free one`;
}

/** Whether --port can be listened on, asked before the store is opened or created. */
async function checkPort(o: ServerCliOptions): Promise<void> {
  if (o.port === 0) return;
  const probe = createNetServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (err: NodeJS.ErrnoException) => {
      // A host this machine does not have is startServer's to report, as before.
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') reject(new CliError(`cannot start the server: ${portFix(o, err.code)}`, 1));
      else resolve();
    });
    probe.listen({ port: o.port, host: o.host, exclusive: true }, () => probe.close(() => resolve()));
  });
}

async function runServer(o: ServerCliOptions): Promise<void> {
  if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new CliError('--tls-cert and --tls-key go together');
  await checkPort(o);
  const model = await readBaseModel(o.model, {
    variant: o.variant,
    select: o.trainable || o.freeze ? { trainable: o.trainable, freeze: o.freeze } : undefined,
  });
  const config: FederationConfig = {
    k: o.k,
    federationSeed: o.seed,
    epsilon: o.epsilon,
    eta: o.eta,
    shape: o.shape,
    ...(o.generator === 'iid' ? {} : { generator: o.generator }),
    tau: o.tau,
    batchSize: o.batchSize,
    sampling: o.sampling,
    weighting: o.weighting,
    rounds: o.rounds,
    clientsPerRound: o.clientsPerRound,
    deadlineMs: Math.round(o.deadline * 1000),
  };
  const log: Writable | undefined = o.log === '-' ? process.stderr : o.log ? createWriteStream(o.log, { flags: 'a' }) : undefined;
  let server: FederationServer;
  // A shared store is opened here (and closed after the server); a folder is the server's own to open.
  let shared: FederationStore | undefined;
  try {
    if (isPostgresUrl(o.store))
      shared = await openStoreSpec(o.store, { passwordFile: o.storePasswordFile, trustStore: o.trustStore, log: jsonLinesLogger(log) });
    else if (o.storePasswordFile) throw new CliError('--store-password-file goes with a postgres:// store');
    server = await startServer({
      config,
      modelHash: Buffer.from(model.identity, 'hex'),
      generatorVersion: GENERATOR_VERSION,
      paramCount: model.parameters,
      storePath: o.store,
      store: shared,
      trustStore: o.trustStore,
      host: o.host,
      port: o.port,
      tls: o.tlsCert && o.tlsKey ? { certFile: o.tlsCert, keyFile: o.tlsKey } : undefined,
      requireToken: o.auth,
      minClients: o.minClients,
      robustness: { gClipMultiple: o.clipG, maxAbsG: o.maxG ?? Infinity, maxExamples: o.maxExamples },
      log,
    });
  } catch (err) {
    await shared?.close();
    if (err instanceof CliError) throw err;
    const listenCode = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code;
    if (listenCode === 'EADDRINUSE' || listenCode === 'EACCES') throw new CliError(`cannot start the server: ${portFix(o, listenCode)}`, 1);
    const repair =
      err instanceof StoreDamagedError && !isPostgresUrl(o.store)
        ? `\nTo replace it with a backup: ${suggest(`server restore <backup> --store ${o.store} --repair`)}; to rebuild it from its round history: ${suggest(`server repair --store ${o.store}`)} (docs/federation.md, "Backup and restore")`
        : '';
    throw new CliError(`cannot start the server: ${errorMessage(err)}${repair}`, 1);
  }
  if (!shared) ignoreScratchFolder(o.store);
  // A gateway counts only its own clients: the waiting count is said where one process holds them all.
  if (o.log !== '-') narrate(server, config, shared ? null : (o.minClients ?? config.clientsPerRound));
  process.stdout.write(`listening ${server.url}\n`);
  if (shared) note(`store: ${storeName(o.store)}, as one of its gateways (the coordinator is elected there)`);
  if (!o.auth) note('warning: --no-auth: any client that reaches this address can join');

  await new Promise<void>((resolve) => {
    const stop = (why: string) => {
      note(`${why}: closing the server (state is committed after every round)`);
      resolve();
    };
    process.once('SIGINT', () => stop('interrupted'));
    process.once('SIGTERM', () => stop('terminated'));
    if (o.exitWhenFinished) {
      if (server.stats().finished) resolve();
      // Give connected clients a moment to receive the final SYNC, which is sent right after 'finished'.
      server.events.on('finished', () => setTimeout(resolve, 500));
    }
  });
  await server.close();
  await shared?.close();
  if (log && log !== process.stderr) await new Promise<void>((resolve) => (log as Writable).end(resolve));
}

/** Readable progress lines on stderr. */
function narrate(server: FederationServer, config: FederationConfig, minClients: number | null): void {
  const e = server.events;
  // Client ids and messages reach the terminal only printable (an id in an older store may hold anything).
  const note = (line: string): void => say(printable(line));
  // While the next round waits for clients: how many more, at once and at every change, else every 10 s.
  let open = false;
  let said = '';
  let saidAt = 0;
  const waiting = (always: boolean) => {
    const s = server.stats();
    if (minClients === null || open || s.finished || s.clients >= minClients) return;
    const more = minClients - s.clients;
    const line = `round ${s.committedRound + 1} waits for ${more} more client${more === 1 ? '' : 's'} (${s.clients} of ${minClients} connected)`;
    if (!always && line === said && Date.now() - saidAt < 10_000) return;
    note(line);
    said = line;
    saidAt = Date.now();
  };
  const timer = setInterval(() => waiting(false), 1000).unref();
  e.on('finished', () => clearInterval(timer));
  setImmediate(() => waiting(true));
  e.on('clientJoined', (x) => {
    note(`client ${x.clientId} joined (synced to round ${x.lastSyncedRound})`);
    setImmediate(() => waiting(false));
  });
  e.on('clientLeft', (x) => {
    note(`client ${x.clientId} left`);
    setImmediate(() => waiting(false));
  });
  e.on('roundStarted', () => (open = true));
  e.on('roundCommitted', () => (open = false));
  e.on('roundRestarted', () => (open = false));
  e.on('roundStarted', (x) => note(`round ${x.round}/${config.rounds} started: ${x.clients.join(', ')}${x.attempt > 0 ? ` (attempt ${x.attempt + 1})` : ''}`));
  e.on('roundRestarted', (x) => note(`round ${x.round} restarts: ${x.reason}`));
  e.on('uploadExcluded', (x) => note(`round ${x.round}: the upload of ${x.clientId} is left out: ${x.reason}`));
  e.on('notAwaited', (x) => note(`client ${x.clientId} missed ${x.missed} deadlines in a row: rounds no longer wait for it until it uploads again`));
  e.on('lossExcluded', (x) => note(`round ${x.round}: the loss report of ${x.clientId} is left out: ${x.reason}`));
  e.on('halted', (x) => note(`rounds stopped at round ${x.round}: ${x.reason}`));
  e.on('digestMismatch', (x) => note(`warning: client ${x.clientId} holds a different replica at round ${x.round}`));
  e.on('rejected', (x) => note(`rejected ${x.clientId ?? 'a connection'}: ${x.message}`));
  e.on('roundCommitted', (x) => {
    const n = Math.max(1, x.participants.length);
    const perClient = (x.bytes.up + x.bytes.down) / n;
    note(
      `round ${x.round}/${config.rounds} committed: ${x.participants.length} client(s), loss ${fixed(x.lossBefore)} → ${fixed(x.lossAfter)}, ` +
        `${formatBytes(perClient)} per client (FedAvg: ${formatBytes(x.bytes.fedAvg / n)})`,
    );
  });
  e.on('finished', (x) => note(`the federation finished at round ${x.round}`));
}
