// Human-readable text for the run's status, shared by the sidebar and the dashboard.
import type { ConnectionState, TrainerStatus } from '../../contracts/trainer-payloads';

const stateLabels: Record<ConnectionState, string> = {
  idle: 'Idle',
  loading: 'Loading',
  training: 'Training',
  connecting: 'Connecting',
  connected: 'Connected',
  reconnecting: 'Reconnecting',
  finished: 'Finished',
  stopped: 'Stopped',
  error: 'Error',
};

export function stateLabel(status: TrainerStatus): string {
  return stateLabels[status.state];
}

export function progressText(status: TrainerStatus): string {
  if (status.mode === 'federation') {
    const round = status.rounds > 0 ? `Round ${status.round} of ${status.rounds}` : `Round ${status.round}`;
    return `${round} · step ${status.step}`;
  }
  if (status.mode === 'local') return `Step ${status.step} of ${status.steps}`;
  return 'Not training';
}
