// Dashboard webview: the run at a glance. Seed probabilities over all K seeds, loss curves and
// communication bytes, updated live; an empty state until a run has produced data. Status and history
// are saved with setState, so a hidden, reopened or restored-after-reload panel shows them at once.
import { connectToHost } from '../shared/vscodeApi';
import { registerToolkit } from '../shared/toolkit';
import { h, replaceChildren } from '../shared/dom';
import { formatBytes, formatLoss } from '../shared/format';
import { emptyHistory, idleViewStatus, type RunHistory, type ViewStatus } from '../../contracts/webview-messages';
import { progressText, stateLabel } from '../shared/statusText';
import { DashboardCharts } from './charts';
import { summariseSeeds, type SeedSummary } from './seeds';
import { readTheme } from './theme';

registerToolkit();
const host = connectToHost();
const root = document.getElementById('root');
if (!root) throw new Error('dashboard page has no #root element');

function card(id: string, title: string): { section: HTMLElement; subtitle: HTMLElement; canvas: HTMLCanvasElement } {
  const subtitle = h('p', { class: 'muted chart-subtitle', 'data-testid': `${id}-subtitle` });
  const canvas = document.createElement('canvas');
  canvas.setAttribute('data-testid', `${id}-chart`);
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', title);
  const section = h('section', { class: 'chart-card', 'data-testid': `${id}-card` }, h('h2', {}, title), subtitle, h('div', { class: 'chart-box' }, canvas));
  return { section, subtitle, canvas };
}

const header = h('header', { class: 'page-header' });
const empty = h(
  'section',
  { class: 'empty-state', 'data-testid': 'empty-state' },
  h('div', { class: 'empty-state-icon', 'aria-hidden': 'true' }),
  h('h2', {}, 'No training yet'),
  h('p', { class: 'muted' }, 'Start training or join a federation: seed probabilities, loss curves and the bytes exchanged each round appear here as they happen.'),
  h(
    'ul',
    { class: 'empty-state-list' },
    h('li', {}, h('strong', {}, 'Seed probabilities'), ' — how FedKSeed-Pro weights each of the K shared seeds'),
    h('li', {}, h('strong', {}, 'Loss curves'), ' — local step loss and held-out loss'),
    h('li', {}, h('strong', {}, 'Communication'), ' — bytes per round and in total, against what FedAvg would move'),
  ),
);
const seedsCard = card('seeds', 'Seed probabilities');
const lossCard = card('loss', 'Loss');
const bytesCard = card('bytes', 'Communication');
const grid = h('div', { class: 'chart-grid', 'data-testid': 'charts' }, seedsCard.section, lossCard.section, bytesCard.section);
replaceChildren(root, header, h('vscode-divider', { role: 'separator' }), empty, grid);

let charts = new DashboardCharts({ seeds: seedsCard.canvas, loss: lossCard.canvas, bytes: bytesCard.canvas }, readTheme());

function renderHeader({ trainer, model }: ViewStatus): void {
  replaceChildren(
    header,
    h('h1', {}, 'FedKSeed Dashboard'),
    h('span', { class: 'phase-pill', 'data-testid': 'phase', 'data-phase': trainer.state }, stateLabel(trainer)),
    h('span', { class: 'muted', 'data-testid': 'round' }, progressText(trainer)),
    ...(trainer.server ? [h('span', { class: 'muted' }, trainer.server)] : []),
    ...(model ? [h('span', { class: 'muted' }, model)] : []),
    ...(trainer.provider ? [h('span', { class: 'muted' }, trainer.provider)] : []),
  );
}

function seedsSubtitle(seeds: SeedSummary | null): string {
  if (!seeds) return 'No seed distribution yet.';
  const rel = (p: number) => `${(p * seeds.k).toFixed(2)}× uniform`;
  return `K = ${seeds.k.toLocaleString('en-US')}, round ${seeds.round} · max ${seeds.max.toExponential(2)} (${rel(seeds.max)}) · min ${seeds.min.toExponential(2)} (${rel(seeds.min)}) · mean ${seeds.mean.toExponential(2)}`;
}

function lossSubtitle(history: RunHistory): string {
  const lastStep = history.stepLoss.at(-1);
  const lastHeld = history.heldOut.at(-1);
  const firstHeld = history.heldOut[0];
  if (!lastStep && !lastHeld) return 'No losses yet.';
  const held = lastHeld && firstHeld ? ` · held-out ${formatLoss(firstHeld[1])} → ${formatLoss(lastHeld[1])}` : '';
  return `step ${lastStep?.[0] ?? 0}: loss ${formatLoss(lastStep?.[1] ?? null)}${held}`;
}

function bytesSubtitle(history: RunHistory): string {
  if (history.rounds.length === 0) return 'No federation rounds yet: local training exchanges no bytes.';
  const total = history.rounds.reduce((n, r) => n + r.up + r.down, 0);
  const fedAvg = history.rounds.reduce((n, r) => n + r.fedAvg, 0);
  const last = history.rounds.at(-1)!;
  return `round ${last.round}: ${formatBytes(last.up + last.down)} · total ${formatBytes(total)} vs FedAvg ${formatBytes(fedAvg)} (${Math.round(fedAvg / Math.max(1, total)).toLocaleString('en-US')}× less)`;
}

function renderHistory(history: RunHistory): void {
  const hasData = history.stepLoss.length > 0 || history.heldOut.length > 0 || history.rounds.length > 0 || history.seeds !== null;
  empty.hidden = hasData;
  grid.hidden = !hasData;
  const seeds = history.seeds ? summariseSeeds(history.seeds.round, history.seeds.float32Base64) : null;
  seedsCard.subtitle.textContent = seedsSubtitle(seeds);
  lossCard.subtitle.textContent = lossSubtitle(history);
  bytesCard.subtitle.textContent = bytesSubtitle(history);
  charts.update(history, seeds);
  const counts = charts.pointCounts();
  seedsCard.canvas.dataset.points = String(counts.seeds);
  lossCard.canvas.dataset.points = String(counts.loss);
  bytesCard.canvas.dataset.points = String(counts.bytes);
}

const restored = host.restoredState();
let status = restored?.status ?? idleViewStatus;
let history = restored?.history ?? emptyHistory;
renderHeader(status);
renderHistory(history);

// VS Code swaps the body's theme class when the colour theme changes: redraw with the new colours.
new MutationObserver(() => {
  charts.destroy();
  charts = new DashboardCharts({ seeds: seedsCard.canvas, loss: lossCard.canvas, bytes: bytesCard.canvas }, readTheme());
  renderHistory(history);
}).observe(document.body, { attributes: true, attributeFilter: ['class'] });

host.onMessage((message) => {
  switch (message.type) {
    case 'status':
      status = message.status;
      renderHeader(status);
      break;
    case 'history':
      history = message.history;
      renderHistory(history);
      break;
  }
  host.saveState({ status, history });
});
host.post({ type: 'ready' });
