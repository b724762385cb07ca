// Sidebar "Training" view: the run's status and the entry points into the product.
import { connectToHost } from '../shared/vscodeApi';
import { registerToolkit } from '../shared/toolkit';
import { h, replaceChildren } from '../shared/dom';
import { idleStatus, type TrainingStatus } from '../shared/messages';
import { phaseLabel, roundText } from '../shared/statusText';

registerToolkit();
const host = connectToHost();
const root = document.getElementById('root');
if (!root) throw new Error('sidebar page has no #root element');

function statusBlock(status: TrainingStatus): HTMLElement {
  return h(
    'section',
    { class: 'status', 'data-testid': 'training-status' },
    h(
      'div',
      { class: 'status-line' },
      h('span', { class: 'label' }, 'Status'),
      h('span', { class: 'phase-pill', 'data-testid': 'phase', 'data-phase': status.phase }, phaseLabel(status)),
    ),
    h('div', { class: 'status-line' }, h('span', { class: 'label' }, 'Progress'), h('span', {}, roundText(status))),
    ...(status.detail ? [h('p', { class: 'muted detail' }, status.detail)] : []),
  );
}

function render(status: TrainingStatus): void {
  const openDashboard = h('vscode-button', { appearance: 'primary', 'data-testid': 'open-dashboard' }, 'Open Dashboard');
  openDashboard.addEventListener('click', () => host.post({ type: 'runCommand', command: 'fedkseed.showDashboard' }));
  replaceChildren(
    root!,
    statusBlock(status),
    h(
      'p',
      { class: 'muted intro' },
      'Fine-tune a language model together with others: your data stays on this machine and each round costs a few kilobytes.',
    ),
    h('div', { class: 'actions' }, openDashboard),
  );
}

let status = host.restoredState()?.status ?? idleStatus;
render(status);
host.onMessage((message) => {
  switch (message.type) {
    case 'status':
      status = message.status;
      host.saveState({ status });
      render(status);
      break;
  }
});
host.post({ type: 'ready' });
