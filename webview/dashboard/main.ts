// Dashboard webview: the federation run at a glance. Until a run exists it shows an empty state;
// the seed-probability, loss and communication charts render into the sections laid out here.
import { connectToHost } from '../shared/vscodeApi';
import { registerToolkit } from '../shared/toolkit';
import { h, replaceChildren } from '../shared/dom';
import { idleStatus, type TrainingStatus } from '../shared/messages';
import { phaseLabel, roundText } from '../shared/statusText';

registerToolkit();
const host = connectToHost();
const root = document.getElementById('root');
if (!root) throw new Error('dashboard page has no #root element');

function header(status: TrainingStatus): HTMLElement {
  return h(
    'header',
    { class: 'page-header' },
    h('h1', {}, 'FedKSeed Dashboard'),
    h('span', { class: 'phase-pill', 'data-testid': 'phase', 'data-phase': status.phase }, phaseLabel(status)),
    h('span', { class: 'muted', 'data-testid': 'round' }, roundText(status)),
  );
}

function emptyState(): HTMLElement {
  return h(
    'section',
    { class: 'empty-state', 'data-testid': 'empty-state' },
    h('div', { class: 'empty-state-icon', 'aria-hidden': 'true' }),
    h('h2', {}, 'No training yet'),
    h(
      'p',
      { class: 'muted' },
      'Start a training run or join a federation to see seed probabilities, loss curves and the bytes exchanged each round here.',
    ),
    h(
      'ul',
      { class: 'empty-state-list' },
      h('li', {}, h('strong', {}, 'Seed probabilities'), ' — how FedKSeed-Pro weights each of the K shared seeds'),
      h('li', {}, h('strong', {}, 'Loss curves'), ' — training and held-out loss per round'),
      h('li', {}, h('strong', {}, 'Communication'), ' — bytes sent and received, per round and in total'),
    ),
  );
}

function render(status: TrainingStatus): void {
  replaceChildren(root!, header(status), h('vscode-divider', { role: 'separator' }), emptyState());
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
