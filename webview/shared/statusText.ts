// Human-readable text for a training status, shared by the sidebar and the dashboard.
import type { TrainingStatus } from './messages';

const phaseLabels: Record<TrainingStatus['phase'], string> = {
  idle: 'Idle',
  connecting: 'Connecting',
  training: 'Training',
  stopped: 'Stopped',
  error: 'Error',
};

export function phaseLabel(status: TrainingStatus): string {
  return phaseLabels[status.phase];
}

export function roundText(status: TrainingStatus): string {
  return status.round === 0 ? 'No rounds completed' : `Round ${status.round}`;
}
