// Human-readable text for the run's status, shared by the sidebar and the dashboard. The figures
// themselves (progress, bytes, ratio, rounds) come worded from the extension (contracts/run-figures.ts).
import type { ConnectionState, TrainerStatus } from '../../contracts/trainer-payloads';

const stateLabels: Record<ConnectionState, string> = {
  idle: 'Idle',
  loading: 'Loading',
  training: 'Training',
  connecting: 'Connecting',
  connected: 'Connected',
  reconnecting: 'Reconnecting',
  stopping: 'Stopping…',
  finished: 'Finished',
  stopped: 'Stopped',
  error: 'Error',
};

export function stateLabel(status: TrainerStatus): string {
  return stateLabels[status.state];
}

/** A job runs (the Stop button shows, the start buttons hide). */
export function isRunning(status: TrainerStatus): boolean {
  return ['loading', 'training', 'connecting', 'connected', 'reconnecting', 'stopping'].includes(status.state);
}
