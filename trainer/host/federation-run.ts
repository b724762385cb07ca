// Joins a federation with the engine as the local trainer and turns the client's events into the
// status, round and seed-distribution notifications the extension shows. A round's bytes are counted
// as the server counts them (from its assignment to its result); the replica is checkpointed after every
// round it syncs; a server that cannot be reached ends the join after a few tries with the cause.
import { FederationClient, type LocalTrainer, type StepProgress } from '../../federation/client';
import { fedAvgBytesPerClient, type FederationConfig } from '../../protocol';
import type { HostNotifier } from './notifier';
import type { FederationResult, JoinFederationParams } from '../../contracts/trainer-payloads';
import type { StatusReporter } from './status-reporter';
import { causeOf, ConnectionFailedError, failureFromClose, failureFromError } from './connection-failure';
import type { ConnectionFailure } from '../../contracts/trainer-payloads';

/** Attempts in a row before a join gives up: while never connected, and after a welcome. */
const DEFAULT_CONNECT_ATTEMPTS = 3;
const RECONNECT_ATTEMPTS = 8;

/** The loss of a step; none for a skipped step (its loss is NaN). */
function stepLoss(progress: StepProgress): number | undefined {
  return Number.isFinite(progress.loss) ? progress.loss : undefined;
}

export interface FederationHooks {
  /** The replica now holds committed round `round` of a federation with this config (checkpoint it). */
  synced(round: number, config: FederationConfig): void;
}

export interface FederationRunResult extends Omit<FederationResult, 'weights'> {
  /** The committed round the replica holds. */
  readonly syncedRound: number;
}

export async function runFederation(
  trainer: LocalTrainer & { stop?: () => void },
  paramCount: number,
  params: JoinFederationParams,
  reporter: StatusReporter,
  notify: HostNotifier,
  signal: AbortSignal,
  hooks: FederationHooks,
  lastSyncedRound = 0,
): Promise<FederationRunResult> {
  const client = new FederationClient({
    url: params.url,
    clientId: params.clientId,
    token: params.token,
    trainer,
    lastSyncedRound,
    backoff: { maxAttempts: RECONNECT_ATTEMPTS },
  });
  const connectAttempts = params.connectAttempts ?? DEFAULT_CONNECT_ATTEMPTS;
  const fedAvg = fedAvgBytesPerClient(paramCount);
  let config: FederationConfig | null = null;
  let welcomed = false;
  let gaveUp: ConnectionFailure | null = null;
  let baselineSent = false;
  /** Bytes the server counts for each round (see the client's `bytes` event); the rest is overhead. */
  const roundBytes = new Map<number, { up: number; down: number }>();
  let inProgress: number | null = null;
  let total = { up: 0, down: 0, fedAvg: 0 };
  /** The x axis: round r's local step s is (r − 1)·τ + s, the same for every client and across a rejoin. */
  const stepOf = (round: number, step: number) => (round - 1) * (config?.tau ?? 0) + step;

  client.on('connected', () => reporter.update({ state: 'connecting', detail: `Connected to ${params.url}, joining…` }));
  client.on('welcome', ({ config: c, committedRound }) => {
    config = c;
    welcomed = true;
    reporter.update({
      state: 'connected',
      rounds: c.rounds,
      round: committedRound,
      committedRound: Math.max(lastSyncedRound, reporter.status.committedRound ?? 0),
      steps: c.tau,
      detail: `Joined: K = ${c.k}, τ = ${c.tau}, ${c.sampling === 'pro' ? 'FedKSeed-Pro' : 'uniform seeds'}`,
    });
  });
  client.on('disconnected', (close) => {
    const retry = close.retryInMs !== null ? `; retrying in ${(close.retryInMs / 1000).toFixed(1)} s` : '';
    const why = `${failureFromClose(params.url, close).detail}`;
    if (welcomed) {
      reporter.update({ state: 'reconnecting', detail: `Disconnected (${why})${retry}` });
      return;
    }
    if (close.attempt >= connectAttempts) {
      // Never connected: a few tries tell a server that is down from a blip; then say why and stop.
      gaveUp = failureFromClose(params.url, close);
      client.stop();
      return;
    }
    reporter.update({ state: 'connecting', detail: `Attempt ${close.attempt} of ${connectAttempts} failed (${causeOf(close)}: ${why})${retry}` });
  });
  client.on('synced', ({ round }) => {
    if (config) hooks.synced(round, config);
  });
  client.on('round', (e) => {
    inProgress = e.round;
    // The round shown is the one in progress (a completed round keeps its number until the next starts).
    reporter.update({
      state: 'training',
      round: e.round,
      steps: e.steps,
      roundStep: 0,
      step: stepOf(e.round, 0),
      detail: `Training round ${e.round} of ${config?.rounds ?? '?'}`,
    });
    const k = config?.k ?? 1;
    const p = e.probabilities ?? new Float64Array(k).fill(1 / k);
    notify.seedProbabilities(e.round, p);
  });
  client.on('step', (p) => {
    const step = stepOf(p.round, p.step); // p.step counts from 1 within the round
    const loss = stepLoss(p);
    reporter.update({ roundStep: p.step });
    if (loss !== undefined) reporter.step({ step, round: p.round, loss });
    else reporter.update({ step });
  });
  client.on('uploaded', (e) => {
    reporter.update({ state: 'connected', detail: `Uploaded ${e.pairs} seed gradients for round ${e.round}; waiting for the other clients` });
  });
  client.on('bytes', ({ direction, bytes, round }) => {
    if (direction === 'up') total.up += bytes;
    else total.down += bytes;
    if (round !== null) {
      const counted = roundBytes.get(round) ?? { up: 0, down: 0 };
      counted[direction] += bytes;
      roundBytes.set(round, counted);
    }
    const current = inProgress !== null ? (roundBytes.get(inProgress) ?? { up: 0, down: 0 }) : { up: 0, down: 0 };
    reporter.updateBytes({ upRound: current.up, downRound: current.down, upTotal: total.up, downTotal: total.down });
  });
  client.on('result', (r) => {
    const counted = roundBytes.get(r.round) ?? { up: 0, down: 0 };
    const heldOut = Number.isFinite(r.lossAfter) ? r.lossAfter : null;
    const step = stepOf(r.round, config?.tau ?? 0);
    if (!baselineSent && Number.isFinite(r.lossBefore)) {
      // The held-out loss of the model the round started from: the run's baseline (the base model at round 1).
      notify.evaluation({ step: stepOf(r.round, 0), round: r.round - 1, heldOutLoss: r.lossBefore });
      baselineSent = true;
    }
    total = { ...total, fedAvg: total.fedAvg + fedAvg };
    notify.roundCompleted({
      round: r.round,
      rounds: config?.rounds ?? 0,
      step,
      heldOutLoss: heldOut,
      bytesUp: counted.up,
      bytesDown: counted.down,
      fedAvgBytes: fedAvg,
    });
    if (heldOut !== null) notify.evaluation({ step, round: r.round, heldOutLoss: heldOut });
    if (inProgress === r.round) inProgress = null;
    reporter.update({ round: r.round, committedRound: r.round, heldOutLoss: heldOut ?? reporter.status.heldOutLoss });
    reporter.updateBytes({ upRound: 0, downRound: 0, fedAvgRound: fedAvg, fedAvgTotal: total.fedAvg });
  });
  client.on('serverError', (e) => notify.log('warn', `server error ${e.name}: ${e.message}`));
  client.on('resync', (e) =>
    notify.log(
      'warn',
      `the replica at round ${e.round} does not follow the federation (${e.message}): rebuilding it from the base model and rejoining from round 0`,
    ),
  );

  const onAbort = () => {
    // Leave now: end the round in progress as well as the connection.
    trainer.stop?.();
    client.stop();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const result = await client.run();
    reporter.update({
      state: 'finished',
      round: result.finalRound,
      committedRound: result.finalRound,
      detail: `The federation finished after round ${result.finalRound}`,
    });
    return { finalRound: result.finalRound, digest: result.digest, stopped: false, syncedRound: client.syncedRound };
  } catch (err) {
    if (signal.aborted) return { finalRound: reporter.status.committedRound ?? client.syncedRound, digest: '', stopped: true, syncedRound: client.syncedRound };
    const failure = gaveUp ?? failureFromError(params.url, err);
    if (failure) throw new ConnectionFailedError(failure);
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
