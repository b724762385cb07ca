// Typed notifications from the trainer host to the extension.
import type { MessageConnection } from 'vscode-jsonrpc/node';
import { encodeFloat32Base64 } from '../../contracts/node/float32-base64';
import { Notifications, type Evaluation, type HeldOutMetricsNotification, type LogNotification, type RoundCompleted } from '../../contracts/trainer-rpc';
import type { StatusSink } from './status-reporter';

export interface HostNotifier extends StatusSink {
  evaluation(evaluation: Evaluation): void;
  metrics(metrics: HeldOutMetricsNotification): void;
  roundCompleted(round: RoundCompleted): void;
  seedProbabilities(round: number, p: ArrayLike<number>): void;
  log(level: LogNotification['level'], message: string): void;
}

/** A notification that cannot be written (the extension went away) is dropped: stdin's end stops us. */
function quiet(sent: Promise<void>): void {
  sent.catch(() => undefined);
}

export function connectionNotifier(connection: MessageConnection): HostNotifier {
  return {
    status: (status) => quiet(connection.sendNotification(Notifications.status, status)),
    steps: (batch) => quiet(connection.sendNotification(Notifications.steps, batch)),
    evaluation: (evaluation) => quiet(connection.sendNotification(Notifications.evaluation, evaluation)),
    metrics: (metrics) => quiet(connection.sendNotification(Notifications.metrics, metrics)),
    roundCompleted: (round) => quiet(connection.sendNotification(Notifications.roundCompleted, round)),
    seedProbabilities: (round, p) =>
      quiet(connection.sendNotification(Notifications.seedProbabilities, { round, k: p.length, float32Base64: encodeFloat32Base64(p) })),
    log: (level, message) => quiet(connection.sendNotification(Notifications.log, { level, message })),
  };
}
