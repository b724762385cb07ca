// Sidebar "Training" view: where the run stands (connection, round and step, losses, bytes, provider)
// and buttons for the main actions, enabled by the run's state.
import { connectToHost } from '../shared/vscodeApi';
import { registerToolkit } from '../shared/toolkit';
import { h, replaceChildren } from '../shared/dom';
import { formatBytes, formatLoss } from '../shared/format';
import { idleViewStatus, type ViewStatus, type WebviewCommandId } from '../../contracts/webview-messages';
import { progressText, stateLabel } from '../shared/statusText';

registerToolkit();
const host = connectToHost();
const root = document.getElementById('root');
if (!root) throw new Error('sidebar page has no #root element');

function row(label: string, value: string, testId: string): HTMLElement {
  return h('div', { class: 'status-line' }, h('span', { class: 'label' }, label), h('span', { class: 'value', 'data-testid': testId }, value));
}

function button(label: string, command: WebviewCommandId, appearance: 'primary' | 'secondary', testId: string): HTMLElement {
  const element = h('vscode-button', { appearance, 'data-testid': testId }, label);
  element.addEventListener('click', () => host.post({ type: 'runCommand', command }));
  return element;
}

function statusBlock({ trainer, localServer, model }: ViewStatus): HTMLElement {
  const b = trainer.bytes;
  const federated = trainer.mode === 'federation';
  const saving = b.fedAvgTotal > 0 && b.upTotal + b.downTotal > 0 ? ` (${Math.round(b.fedAvgTotal / (b.upTotal + b.downTotal)).toLocaleString('en-US')}× less than FedAvg)` : '';
  return h(
    'section',
    { class: 'status', 'data-testid': 'training-status' },
    h(
      'div',
      { class: 'status-line' },
      h('span', { class: 'label' }, 'Status'),
      h('span', { class: 'phase-pill', 'data-testid': 'phase', 'data-phase': trainer.state }, stateLabel(trainer)),
    ),
    row('Server', trainer.server ?? (federated ? '—' : 'Local training'), 'server'),
    row('Progress', progressText(trainer), 'progress'),
    row('Loss', formatLoss(trainer.loss), 'loss'),
    row('Held-out loss', formatLoss(trainer.heldOutLoss), 'held-out-loss'),
    ...(federated
      ? [
          row('This round', `↑ ${formatBytes(b.upRound)}  ↓ ${formatBytes(b.downRound)}`, 'bytes-round'),
          row('Total', `↑ ${formatBytes(b.upTotal)}  ↓ ${formatBytes(b.downTotal)}`, 'bytes-total'),
        ]
      : []),
    row('Provider', trainer.provider ?? '—', 'provider'),
    ...(model ? [row('Model', model, 'model')] : []),
    ...(localServer
      ? [row('Local server', `${localServer.url.replace(/^wss?:\/\//, '')} · round ${localServer.round}/${localServer.rounds} · ${localServer.clients} client${localServer.clients === 1 ? '' : 's'}`, 'local-server')]
      : []),
    ...(trainer.detail ? [h('p', { class: 'muted detail', 'data-testid': 'detail' }, trainer.detail + saving)] : []),
  );
}

function actions({ trainer, localServer }: ViewStatus): HTMLElement {
  const running = ['loading', 'training', 'connecting', 'connected', 'reconnecting'].includes(trainer.state);
  const buttons = running
    ? [button(trainer.mode === 'federation' ? 'Leave Federation' : 'Stop Training', 'fedkseed.stopTraining', 'primary', 'stop-training')]
    : [
        button('Start Training', 'fedkseed.startTraining', 'primary', 'start-training'),
        button('Start Local Federation', 'fedkseed.startLocalFederation', 'secondary', 'start-local-federation'),
        button('Connect to Federation', 'fedkseed.connectFederation', 'secondary', 'connect-federation'),
      ];
  if (localServer) buttons.push(button('Stop Local Server', 'fedkseed.stopLocalServer', 'secondary', 'stop-local-server'));
  buttons.push(button('Open Dashboard', 'fedkseed.showDashboard', 'secondary', 'open-dashboard'));
  return h('div', { class: 'actions' }, ...buttons);
}

function render(status: ViewStatus): void {
  replaceChildren(
    root!,
    statusBlock(status),
    h('vscode-divider', { role: 'separator' }),
    actions(status),
    h('p', { class: 'muted intro' }, 'Your data stays on this machine; each federation round costs a few kilobytes.'),
  );
}

let status = host.restoredState()?.status ?? idleViewStatus;
render(status);
host.onMessage((message) => {
  if (message.type !== 'status') return;
  status = message.status;
  host.saveState({ status });
  render(status);
});
host.post({ type: 'ready' });
