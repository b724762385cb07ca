// Joins a federation with the engine as the local trainer and turns the client's events into the
// status, round and seed-distribution notifications the extension shows.
import { FederationClient, type LocalTrainer, type StepProgress } from '../client';
import { fedAvgBytesPerClient } from '../../protocol';
import type { HostNotifier } from './notifier';
import type { FederationResult, JoinFederationParams } from '../../contracts/trainer-payloads';
import type { StatusReporter } from './status-reporter';

/** The loss of a step; none for a skipped step (its loss is NaN). */
function stepLoss(progress: StepProgress): number | undefined {
  return Number.isFinite(progress.loss) ? progress.loss : undefined;
}

export async function runFederation(
  trainer: LocalTrainer & { stop?: () => void },
  paramCount: number,
  params: JoinFederationParams,
  reporter: StatusReporter,
  notify: HostNotifier,
  signal: AbortSignal,
): Promise<FederationResult> {
  const client = new FederationClient({ url: params.url, clientId: params.clientId, token: params.token, trainer });
  const fedAvg = fedAvgBytesPerClient(paramCount);
  let rounds = 0;
  let stepsBefore = 0;
  let round = { up: 0, down: 0 };
  let total = { up: 0, down: 0, fedAvg: 0 };
  let k = 0;

  client.on('connected', () => reporter.update({ state: 'connecting', detail: `Connected to ${params.url}, authenticating…` }));
  client.on('welcome', ({ config, committedRound }) => {
    rounds = config.rounds;
    k = config.k;
    reporter.update({ state: 'connected', rounds, round: committedRound, detail: `Joined: K = ${config.k}, τ = ${config.tau}, ${config.sampling === 'pro' ? 'FedKSeed-Pro' : 'uniform seeds'}` });
  });
  client.on('disconnected', ({ reason, retryInMs }) =>
    reporter.update({ state: 'reconnecting', detail: `Disconnected${reason ? ` (${reason})` : ''}; retrying in ${((retryInMs ?? 0) / 1000).toFixed(1)} s` }),
  );
  client.on('round', (e) => {
    // The round shown is the one in progress (a completed round keeps its number until the next starts).
    reporter.update({ state: 'training', round: e.round, steps: e.steps, detail: `Training round ${e.round} of ${rounds}` });
    const p = e.probabilities ?? new Float64Array(k).fill(1 / k);
    notify.seedProbabilities(e.round, p);
  });
  client.on('step', (p) => {
    const step = stepsBefore + p.step; // p.step counts from 1 within the round
    const loss = stepLoss(p);
    if (loss !== undefined) reporter.step({ step, round: p.round, loss });
    else reporter.update({ step });
  });
  client.on('uploaded', (e) => {
    stepsBefore = reporter.status.step;
    reporter.update({ state: 'connected', detail: `Uploaded ${e.pairs} seed gradients for round ${e.round}; waiting for the other clients` });
  });
  client.on('bytes', ({ direction, bytes }) => {
    if (direction === 'up') round.up += bytes;
    else round.down += bytes;
    reporter.updateBytes({ upRound: round.up, downRound: round.down, upTotal: total.up + round.up, downTotal: total.down + round.down });
  });
  client.on('result', (r) => {
    total = { up: total.up + round.up, down: total.down + round.down, fedAvg: total.fedAvg + fedAvg };
    const heldOut = Number.isFinite(r.lossAfter) ? r.lossAfter : null;
    notify.roundCompleted({ round: r.round, rounds, step: reporter.status.step, heldOutLoss: heldOut, bytesUp: round.up, bytesDown: round.down, fedAvgBytes: fedAvg });
    if (heldOut !== null) notify.evaluation({ step: reporter.status.step, round: r.round, heldOutLoss: heldOut });
    reporter.update({ round: r.round, heldOutLoss: heldOut ?? reporter.status.heldOutLoss });
    reporter.updateBytes({ fedAvgRound: fedAvg, fedAvgTotal: total.fedAvg, upTotal: total.up, downTotal: total.down });
    round = { up: 0, down: 0 };
  });
  client.on('serverError', (e) => notify.log('warn', `server error ${e.name}: ${e.message}`));

  const onAbort = () => {
    // Leave now: end the round in progress as well as the connection.
    trainer.stop?.();
    client.stop();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const result = await client.run();
    reporter.update({ state: 'finished', round: result.finalRound, detail: `The federation finished after round ${result.finalRound}` });
    return { finalRound: result.finalRound, digest: result.digest, stopped: false };
  } catch (err) {
    if (signal.aborted) return { finalRound: client.syncedRound, digest: '', stopped: true };
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
