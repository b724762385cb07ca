import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { type ClientEvent, finiteOrNull } from '../../contracts/cli-events';
import { CLIENT_DEFAULTS, TRAINING_DEFAULTS } from '../../contracts/defaults';
import { formatBytes } from '../../protocol/format';
import type { FederationConfig } from '../../protocol';
import { EngineLocalTrainer } from '../../trainer/client/engine-trainer';
import { describeConnectionError, FederationClient, FederationClientError } from '../../federation/client/federation-client';
import { ErrorCode, errorMessage } from '../../protocol/errors';
import { fnv1a32 } from '../../trainer/data/rng';
import { type Engine, openEngine } from '../../trainer/engine';
import { applyCheckpoint, type Checkpoint, loadCheckpoint, federationOrigin, makeCheckpoint, saveCheckpoint } from '../../trainer/zo/checkpoint';
import { CliError } from '../errors';
import { suggest } from '../invocation';
import {
  addDataOptions,
  addModelOptions,
  type DataCliOptions,
  engineOptions,
  existingPath,
  fraction,
  loadCliDataset,
  type ModelCliOptions,
  positiveInt,
  reportPrecision,
  writableFile,
} from '../options';
import { emitJson, fixed, note } from '../output';
import { describeReport } from '../../trainer/device/providers';
import { addMemoryOption, memoryEngineOptions, type MemoryCliOptions } from '../memory-option';

interface ClientCliOptions extends ModelCliOptions, DataCliOptions, MemoryCliOptions {
  server: string;
  token?: string;
  id?: string;
  heldOut: number;
  heldOutExamples: number;
  out: string;
  resume?: boolean;
  ca?: string;
  insecure?: boolean;
  maxAttempts: number;
  json?: boolean;
}

export function registerClient(program: Command): void {
  const cmd = program
    .command('client')
    .description('Join a federation: train on local data (it never leaves this machine), upload (seed, g) pairs, keep an exact replica of the global model')
    .requiredOption('--server <url>', 'ws:// or wss:// address of the federation server')
    .option('--token <token>', 'access token from `fedkseed tokens create` (default: $FEDKSEED_TOKEN)')
    .option('--id <name>', 'client id, stable across reconnects (default: host name + data path)');
  addModelOptions(cmd);
  addMemoryOption(cmd);
  addDataOptions(cmd, '.')
    .option('--held-out <fraction>', 'share of the local data held out for the loss before/after each round', fraction, TRAINING_DEFAULTS.heldOutFraction)
    .option('--held-out-examples <n>', 'held-out examples behind each round’s loss statistics', positiveInt, CLIENT_DEFAULTS.heldOutExamples)
    .option(
      '--out <file>',
      'checkpoint of the replica (base + K coefficients), rewritten after every synced round (its folder must exist)',
      writableFile('--out'),
      'fedkseed-federated.json',
    )
    .option('--resume', 'start from the replica in --out (same server and model) instead of the base model')
    .option('--ca <file>', 'trust this CA certificate (PEM) for wss://', existingPath('--ca'))
    .option('--insecure', 'wss:// without verifying the server certificate (testing only)')
    .option('--max-attempts <n>', 'consecutive failed connection attempts before giving up', positiveInt, 20)
    .option('--json', 'print progress as JSON lines')
    .action((o: ClientCliOptions) => runClient(o));
}

function defaultClientId(data: string): string {
  const host =
    hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .slice(0, 40) || 'client';
  return `${host}-${fnv1a32(resolve(data)).toString(16).padStart(8, '0')}`;
}

function replicaCheckpoint(engine: Engine, config: FederationConfig, round: number): Checkpoint {
  return makeCheckpoint(federationOrigin(engine.model.identity, config), engine.params.appliedCoefficients(), { round });
}

async function runClient(o: ClientCliOptions): Promise<void> {
  const token = o.token ?? process.env.FEDKSEED_TOKEN;
  if (!token) throw new CliError('pass --token (or set FEDKSEED_TOKEN); a local server started with --no-auth accepts any token');
  if (!/^wss?:\/\//.test(o.server)) throw new CliError(`--server must be a ws:// or wss:// address, got ${o.server}`);
  const clientId = o.id ?? defaultClientId(o.data);
  if (Buffer.byteLength(clientId) > 64 || clientId.length === 0) throw new CliError('--id must be 1 to 64 bytes');
  const say = (e: ClientEvent, text?: string) => (o.json ? emitJson(e) : text !== undefined && note(text));

  const engine = await openEngine({ ...engineOptions(o), ...memoryEngineOptions(o) });
  reportPrecision(engine, o.json);
  try {
    let resumed: Checkpoint | null = null;
    if (o.resume && existsSync(o.out)) {
      resumed = loadCheckpoint(o.out);
      if (resumed.round === undefined) throw new CliError(`${o.out} is not a federation checkpoint (it has no round)`);
      applyCheckpoint(engine.params, resumed, engine.model.identity, o.out);
    }
    const data = await loadCliDataset(o, engine.tokenizer, o.heldOut, engine.context);
    if (data.train.length === 0) throw new CliError(`no training examples in ${o.data}`);
    const trainer = new EngineLocalTrainer(engine, data, {
      batchSize: o.batchSize,
      seqLen: o.seqLen,
      clientSeed: fnv1a32(clientId),
      heldOutExamples: o.heldOutExamples,
    });
    const resumedRound = resumed?.round ?? 0;
    say(
      {
        event: 'start',
        clientId,
        parameters: engine.params.parameterCount,
        train: data.train.length,
        heldOut: data.heldOut.length,
        kernel: engine.params.kernel,
        provider: engine.session.executionProvider,
        resumedRound,
      },
      `client ${clientId}: ${engine.params.parameterCount.toLocaleString()} parameters · ${data.train.length} training / ${data.heldOut.length} held-out examples · ${describeReport(engine.session.providerReport)}${resumedRound > 0 ? ` · resuming at round ${resumedRound}` : ''}`,
    );

    const client = new FederationClient({
      url: o.server,
      clientId,
      token,
      trainer,
      lastSyncedRound: resumedRound,
      backoff: { maxAttempts: o.maxAttempts },
      tls: o.ca || o.insecure ? { ca: o.ca ? readFileSync(o.ca) : undefined, rejectUnauthorized: !o.insecure } : undefined,
    });
    let config: FederationConfig | null = null;
    const waiting = waitNotices(o.json ? null : note);
    let fatal: Error | null = null;
    const bytes = () => {
      const b = client.bytes();
      return `↑${formatBytes(b.frameUp)} ↓${formatBytes(b.frameDown)}`;
    };
    client.on('connected', ({ attempt }) => say({ event: 'connected', attempt }, `connected to ${o.server}`));
    client.on('welcome', ({ config: c, committedRound }) => {
      config = c;
      if (resumed && (resumed.k !== c.k || resumed.federationSeed !== c.federationSeed || resumed.eta !== c.eta)) {
        fatal = new CliError(
          `${o.out} belongs to another federation (K=${resumed.k}, seed ${resumed.federationSeed}, η=${resumed.eta}); drop --resume or use another --out`,
        );
        client.stop();
        return;
      }
      say(
        { event: 'welcome', committedRound, rounds: c.rounds, k: c.k, tau: c.tau, sampling: c.sampling },
        `federation: ${c.rounds} rounds, K=${c.k}, τ=${c.tau}, ${c.sampling} sampling; ${committedRound} committed`,
      );
      if (committedRound < c.rounds) waiting.start(committedRound + 1, c.clientsPerRound);
    });
    client.on('disconnected', (e) => {
      waiting.stop();
      const cause = describeConnectionError(o.server, e.error, e.errorCode);
      const retry = `retrying in ${((e.retryInMs ?? 0) / 1000).toFixed(1)} s${e.attempt > 0 ? ` (attempt ${e.attempt} of ${o.maxAttempts})` : ''}`;
      say(
        { event: 'disconnected', ...e },
        e.welcomed || cause === null
          ? `disconnected from ${o.server} (${cause ?? (e.reason || e.code)}); ${retry}`
          : `cannot reach ${o.server}: ${cause}; ${retry}`,
      );
    });
    client.on('round', (e) => {
      waiting.stop();
      say(
        { event: 'round', round: e.round, steps: e.steps, changedSeeds: e.changedSeeds },
        `round ${e.round}/${config?.rounds ?? '?'}: ${e.steps} local steps`,
      );
    });
    const every = (steps: number) => Math.max(1, Math.round(steps / 5));
    let window = 0;
    let count = 0;
    client.on('step', (p) => {
      if (o.json)
        return emitJson({
          event: 'step',
          round: p.round,
          step: p.step,
          steps: p.steps,
          seed: p.seed,
          g: p.g,
          loss: finiteOrNull(p.loss),
        } satisfies ClientEvent);
      if (Number.isFinite(p.loss)) {
        window += p.loss;
        count++;
      }
      if (p.step % every(p.steps) === 0 || p.step === p.steps) {
        note(`round ${p.round}  step ${String(p.step).padStart(4)}/${p.steps}  train loss ${count > 0 ? fixed(window / count) : 'n/a'}  ${bytes()}`);
        window = 0;
        count = 0;
      }
    });
    client.on('uploaded', (e) => say({ event: 'uploaded', ...e }, `round ${e.round}: uploaded ${e.pairs} pairs in ${formatBytes(e.bytes)}`));
    client.on('ack', (e) =>
      say({ event: 'ack', round: e.round, status: e.status, digest: e.digest }, e.status === 'accepted' ? undefined : `round ${e.round}: upload ${e.status}`),
    );
    client.on('result', (e) => {
      // The round is committed: the next one may wait for clients again.
      if (config && e.round < config.rounds) waiting.start(e.round + 1, config.clientsPerRound);
      say(
        { event: 'result', round: e.round, participants: e.participants, lossBefore: finiteOrNull(e.lossBefore), lossAfter: finiteOrNull(e.lossAfter) },
        `round ${e.round} committed: ${e.participants} client(s), mean local loss ${fixed(e.lossBefore)} → ${fixed(e.lossAfter)}  ${bytes()}`,
      );
    });
    client.on('synced', ({ round, digest }) => {
      // The replica on disk follows the committed state, so --resume picks up where this left off.
      if (config) saveCheckpoint(o.out, replicaCheckpoint(engine, config, round));
      say({ event: 'synced', round, digest });
    });
    client.on('serverError', (e) => say({ event: 'server-error', ...e }, `server: ${e.name}: ${e.message}`));
    client.on('resync', (e) =>
      say(
        { event: 'resync', ...e },
        `the replica at round ${e.round} does not follow the federation (${e.message}): rebuilding it from the base model and rejoining from round 0`,
      ),
    );

    let stopping = false;
    let stoppedAt = 0;
    const stop = () => {
      // A terminal's Ctrl-C reaches a supervisor and its clients at once, and the supervisor then asks
      // again: only a second request a moment later means "force".
      if (stopping) {
        if (Date.now() - stoppedAt > 1000) process.exit(130);
        return;
      }
      stopping = true;
      stoppedAt = Date.now();
      note('stopping after the current step (press Ctrl-C again to force)…');
      trainer.stop();
      client.stop();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    try {
      const result = await client.run();
      say(
        { event: 'done', round: result.finalRound, digest: result.digest, checkpoint: o.out, bytes: client.bytes() },
        `the federation finished at round ${result.finalRound}; replica ${result.digest.slice(0, 12)}… saved as ${o.out} (${suggest(`export --checkpoint ${o.out} --out model.onnx`)})  ${bytes()}`,
      );
    } catch (err) {
      if (fatal) throw fatal;
      if (!stopping) throw new CliError(`federation client: ${errorMessage(err)}${refusalHint(err, o)}`, 1);
      const saved = existsSync(o.out) && config !== null ? o.out : null;
      say(
        { event: 'stopped', round: client.syncedRound, checkpoint: saved },
        `stopped at round ${client.syncedRound}${saved ? `; replica saved as ${saved}` : ''}`,
      );
      process.exitCode = 130;
    } finally {
      waiting.stop();
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  } finally {
    await engine.close();
  }
}

/** What to do about a refusal the client cannot cure by reconnecting, when the CLI knows. */
function refusalHint(err: unknown, o: ClientCliOptions): string {
  if (!(err instanceof FederationClientError) || err.code !== ErrorCode.IdentityMismatch) return '';
  const bound = /speaks for client (\S+), not/.exec(err.message)?.[1];
  if (bound)
    return `\nThe token was issued for client id ${bound}: pass --id ${bound} (this client ${o.id === undefined ? 'took the default id, host name + data path' : `passed --id ${o.id}`}).`;
  return `\nA token speaks for one client id: pass --id with the id the token was issued for (tokens list shows it), or ask for a token of your own.`;
}

/**
 * While no round reaches this client, says so after 10 s and every 10 s after: the server may be waiting
 * for more clients (the client cannot count them; the server's output does), or running a round without it.
 */
function waitNotices(print: ((line: string) => void) | null, everyMs = 10_000) {
  let timer: NodeJS.Timeout | null = null;
  const stop = () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
  return {
    stop,
    start(round: number, perRound: number): void {
      stop();
      if (!print) return;
      const since = Date.now();
      const tick = () => {
        print(
          `round ${round} has not started after ${Math.round((Date.now() - since) / 1000)} s: the server waits for enough clients (${perRound} per round; its output says how many more) or runs it without this one`,
        );
        timer = setTimeout(tick, everyMs).unref();
      };
      timer = setTimeout(tick, everyMs).unref();
    },
  };
}
