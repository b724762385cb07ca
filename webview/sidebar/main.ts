// Sidebar "Training" view: where the run stands (state, progress with a time estimate, losses, bytes,
// the weights the trainer holds), the main actions, and the run history (open, compare, remove).
// Built once: every update changes text and attributes in place, so a focused button keeps its focus
// and a screen reader its position; only the status line is a live region, and its text changes only
// when the run's state does.
import { connectToHost } from '../shared/vscodeApi';
import { registerToolkit } from '../shared/toolkit';
import { h, setAttribute, setHidden, setText } from '../shared/dom';
import { formatLoss } from '../shared/format';
import {
  emptyRunList,
  idleViewStatus,
  type RunAction,
  type RunList,
  type SetupView,
  type ViewStatus,
  type WebviewCommandId,
} from '../../contracts/webview-messages';
import { roundsDoneText } from '../../contracts/run-figures';
import { isRunning, stateLabel } from '../shared/statusText';

registerToolkit();
const host = connectToHost();
const root = document.getElementById('root');
if (!root) throw new Error('sidebar page has no #root element');

interface Row {
  readonly row: HTMLElement;
  readonly value: HTMLElement;
}

function row(label: string, testId: string): Row {
  const value = h('span', { class: 'value', 'data-testid': testId });
  return { row: h('div', { class: 'status-line' }, h('span', { class: 'label' }, label), value), value };
}

function button(label: string, onClick: () => void, appearance: 'primary' | 'secondary', testId: string, extra: Record<string, string> = {}): HTMLElement {
  const element = h('vscode-button', { appearance, 'data-testid': testId, ...extra }, label);
  element.addEventListener('click', () => {
    if (element.getAttribute('disabled') === null) onClick();
  });
  return element;
}

const command = (id: WebviewCommandId) => () => host.post({ type: 'runCommand', command: id });
const runAction = (action: RunAction, runId?: string) => host.post({ type: 'runAction', action, runId });

// ---- the status block -------------------------------------------------------------------------------

const phase = h('span', { class: 'phase-pill', 'data-testid': 'phase', 'data-phase': 'idle' }, 'Idle');
// The one live region: the state of the run, announced when it changes (not every step).
const statusLine = h(
  'div',
  { class: 'status-line', 'data-testid': 'status-line', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true' },
  h('span', { class: 'label' }, 'Status'),
  phase,
);
const rows = {
  server: row('Server', 'server'),
  progress: row('Progress', 'progress'),
  loss: row('Loss', 'loss'),
  heldOut: row('Held-out loss', 'held-out-loss'),
  lastRound: row('Last round', 'bytes-round'),
  total: row('Total', 'bytes-total'),
  provider: row('Provider', 'provider'),
  model: row('Model', 'model'),
  weights: row('Weights', 'weights'),
  actsOn: row('Export / Evaluate', 'acts-on'),
  localServer: row('Local server', 'local-server'),
};
const detail = h('p', { class: 'muted detail', 'data-testid': 'detail' });
const statusSection = h(
  'section',
  { class: 'status', 'data-testid': 'training-status', 'aria-label': 'Training status' },
  statusLine,
  ...Object.values(rows).map((r) => r.row),
  detail,
);

// ---- the actions ------------------------------------------------------------------------------------

const buttons = {
  startTraining: button('Start Training', command('fedkseed.startTraining'), 'primary', 'start-training'),
  startLocalFederation: button('Start Local Federation', command('fedkseed.startLocalFederation'), 'secondary', 'start-local-federation'),
  connect: button('Connect to Federation', command('fedkseed.connectFederation'), 'secondary', 'connect-federation'),
  stop: button('Stop Training', command('fedkseed.stopTraining'), 'primary', 'stop-training'),
  stopServer: button('Stop Local Server', command('fedkseed.stopLocalServer'), 'secondary', 'stop-local-server'),
  evaluate: button('Evaluate Model', command('fedkseed.evaluateModel'), 'secondary', 'evaluate-model'),
  export: button('Export Model…', command('fedkseed.exportModel'), 'secondary', 'export-model'),
  dashboard: button('Open Dashboard', command('fedkseed.showDashboard'), 'secondary', 'open-dashboard'),
};
const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' }, ...Object.values(buttons));

// ---- what Start will use (the welcome of an empty sidebar) ------------------------------------------

const setupHeading = h('h2', { id: 'setup-heading' }, 'Get started');
const welcome = h(
  'p',
  { class: 'muted', 'data-testid': 'welcome' },
  'Fine-tune a language model on your own code or data, on this machine or with others in a federation; your data never leaves this machine.',
);
const setupModel = h('strong', { 'data-testid': 'setup-model' });
const setupModelDetail = h('span', { class: 'muted setup-detail', 'data-testid': 'setup-model-detail' });
const setupData = h('strong', { 'data-testid': 'setup-data' });
const setupDataDetail = h('span', { class: 'muted setup-detail', 'data-testid': 'setup-data-detail' });
const setupButtons = {
  model: button('Select Model…', command('fedkseed.selectModel'), 'secondary', 'select-model'),
  data: button('Select Dataset…', command('fedkseed.selectDataset'), 'secondary', 'select-dataset'),
};
const setupSection = h(
  'section',
  { class: 'setup', 'data-testid': 'setup', 'aria-labelledby': 'setup-heading' },
  setupHeading,
  welcome,
  h('p', { class: 'setup-lead' }, 'Start Training and Start Local Federation use:'),
  h('div', { class: 'setup-item' }, h('span', { class: 'label' }, 'Model'), setupModel, setupModelDetail),
  h('div', { class: 'setup-item' }, h('span', { class: 'label' }, 'Data'), setupData, setupDataDetail),
  h('div', { class: 'setup-actions', role: 'group', 'aria-label': 'Change the model or the data' }, setupButtons.model, setupButtons.data),
);

function renderSetup(view: SetupView | undefined, running: boolean, hasRuns: boolean): void {
  setHidden(setupSection, running || !view);
  // The welcome of an empty sidebar; once there are runs, the same facts under a plainer heading.
  setText(setupHeading, hasRuns ? 'Next run' : 'Get started');
  setHidden(welcome, hasRuns);
  if (!view) return;
  setText(setupModel, view.model.name);
  setText(setupModelDetail, view.model.detail);
  setText(setupData, view.data?.name ?? 'none');
  setText(setupDataDetail, view.data?.detail ?? 'open a folder, or select a dataset');
}

// ---- the run history --------------------------------------------------------------------------------

const runItems = h('ul', { class: 'run-items' });
const noRuns = h('p', { class: 'muted' }, 'No runs yet.');
// Which weights the trainer holds (for Export, Evaluate and completions): a run's, or the base model.
const loadWeights = button('Load Run Weights…', command('fedkseed.loadRunWeights'), 'secondary', 'load-run-weights');
const runList = h(
  'section',
  { class: 'runs', 'data-testid': 'run-list', 'aria-labelledby': 'runs-heading' },
  h('h2', { id: 'runs-heading' }, 'Runs'),
  h('div', { class: 'run-list-actions', role: 'group', 'aria-label': 'Run weights' }, loadWeights),
  noRuns,
  runItems,
);

interface RunItem {
  readonly li: HTMLElement;
  readonly title: HTMLElement;
  readonly meta: HTMLElement;
  readonly figures: HTMLElement;
  readonly open: HTMLElement;
  readonly compare: HTMLElement;
  readonly load: HTMLElement;
  readonly remove: HTMLElement;
}
const items = new Map<string, RunItem>();

function runItem(id: string): RunItem {
  const title = h('strong', { class: 'run-title' });
  const meta = h('span', { class: 'muted run-meta' });
  const figures = h('span', { class: 'run-key-figures' });
  const open = button('Open', () => runAction('open', id), 'secondary', 'run-open');
  const compare = button('Compare', () => runAction('compare', id), 'secondary', 'run-compare');
  const load = button('Load Weights', () => runAction('loadWeights', id), 'secondary', 'run-load-weights');
  const remove = button('Remove', () => runAction('remove', id), 'secondary', 'run-remove');
  const li = h(
    'li',
    { class: 'run-item', 'data-testid': 'run-item', 'data-run-id': id },
    title,
    meta,
    figures,
    h('div', { class: 'run-actions' }, open, compare, load, remove),
  );
  return { li, title, meta, figures, open, compare, load, remove };
}

function renderRuns(list: RunList): void {
  const focused = document.activeElement;
  const seen = new Set<string>();
  let previous: Element | null = null;
  for (const { summary, figures } of list.runs) {
    seen.add(summary.id);
    let item = items.get(summary.id);
    if (!item) {
      item = runItem(summary.id);
      items.set(summary.id, item);
    }
    const shown = summary.id === list.shownRunId;
    const when = new Date(summary.startedAt).toLocaleString();
    setText(item.title, summary.title);
    setText(item.meta, `${when} · ${summary.model} · ${summary.state}${shown ? ' · shown' : ''}${summary.id === list.compareRunId ? ' · compared' : ''}`);
    setText(item.figures, figures);
    setAttribute(item.open, 'aria-label', `Open ${summary.title} of ${when} in the dashboard`);
    setAttribute(item.compare, 'aria-label', `Compare ${summary.title} of ${when} with the run shown`);
    setAttribute(item.load, 'aria-label', `Load the fine-tuned weights of ${summary.title} of ${when} into the trainer`);
    setAttribute(item.remove, 'aria-label', `Remove ${summary.title} of ${when}`);
    // The run shown cannot be compared with itself; the run in progress cannot be removed.
    setHidden(item.compare, shown || summary.kind === 'evaluation');
    // Only a run with a checkpoint has weights to load; the run in progress is training them.
    setHidden(
      item.load,
      !summary.checkpoint || summary.kind === 'evaluation' || (summary.id === list.liveRunId && ['starting', 'running', 'stopping'].includes(summary.state)),
    );
    setHidden(item.remove, ['starting', 'running', 'stopping'].includes(summary.state) && summary.id === list.liveRunId);
    // Keep the order without moving elements that are already in place.
    const expected: Element | null = previous ? previous.nextElementSibling : runItems.firstElementChild;
    if (expected !== item.li) runItems.insertBefore(item.li, expected);
    previous = item.li;
  }
  for (const [id, item] of items) {
    if (seen.has(id)) continue;
    item.li.remove();
    items.delete(id);
  }
  setHidden(noRuns, list.runs.length > 0);
  // A removed item's focused button: focus the list's heading area instead of the page's body.
  if (focused && !focused.isConnected) buttons.dashboard.focus();
}

// ---- updates ----------------------------------------------------------------------------------------

function render({ trainer, localServer, model, figures, weightsText, actsOnText }: ViewStatus): void {
  const federated = trainer.mode === 'federation';
  setText(phase, stateLabel(trainer));
  setAttribute(phase, 'data-phase', trainer.state);
  setText(rows.server.value, trainer.server ?? (trainer.mode === 'local' ? 'Local training' : '—'));
  setText(rows.progress.value, figures.text.progress);
  setText(rows.loss.value, formatLoss(trainer.loss));
  setText(rows.heldOut.value, figures.text.heldOut);
  setHidden(rows.lastRound.row, !federated);
  setHidden(rows.total.row, !federated);
  setText(rows.lastRound.value, figures.text.lastRound);
  setText(rows.total.value, figures.text.ratio ? `${figures.text.total} · ${figures.text.ratio}` : figures.text.total);
  setText(rows.provider.value, trainer.provider ?? '—');
  setHidden(rows.model.row, !model);
  setText(rows.model.value, model ?? '');
  setHidden(rows.weights.row, !weightsText);
  // While a run trains, the weights are its own, in the making.
  setText(
    rows.weights.value,
    isRunning(trainer) ? `being trained (${trainer.mode === 'federation' ? "the federation's replica" : 'this run'})` : (weightsText ?? ''),
  );
  // Export and Evaluate act on the run the dashboard shows when it is not the one held: say so here.
  setHidden(rows.actsOn.row, isRunning(trainer) || !actsOnText);
  setText(rows.actsOn.value, actsOnText ?? '');
  if (localServer) {
    const where = localServer.url.replace(/^wss?:\/\//, '');
    const running = localServer.inProgress !== null ? ` · round ${localServer.inProgress} running` : '';
    setText(
      rows.localServer.value,
      `${where} · ${roundsDoneText(localServer.committed, localServer.rounds)}${running} · ${localServer.clients} client${localServer.clients === 1 ? '' : 's'}`,
    );
    if (!rows.localServer.row.isConnected) rows.weights.row.after(rows.localServer.row);
  } else if (rows.localServer.row.isConnected) {
    rows.localServer.row.remove();
  }
  setHidden(detail, !trainer.detail);
  setText(detail, trainer.detail ?? '');

  const running = isRunning(trainer);
  const focused = document.activeElement;
  // Stop is disabled while stopping, which takes the focus from it (to the page's body): remember that
  // it had it, so the Start button that replaces it gets it back.
  if (focused === buttons.stop) stopHadFocus = true;
  else if (focused instanceof HTMLElement && focused !== document.body) stopHadFocus = false;
  const stopLabel =
    trainer.state === 'stopping'
      ? 'Stopping…'
      : !federated
        ? 'Stop Training'
        : trainer.state === 'connecting' || trainer.state === 'loading'
          ? 'Cancel'
          : 'Leave Federation';
  setText(buttons.stop, stopLabel);
  setAttribute(buttons.stop, 'disabled', trainer.state === 'stopping' ? '' : null);
  setHidden(buttons.stop, !running);
  for (const start of [buttons.startTraining, buttons.startLocalFederation, buttons.connect, buttons.evaluate, buttons.export, loadWeights])
    setHidden(start, running);
  setHidden(buttons.stopServer, !localServer);
  // A focused button that was just hidden hands the focus to the one that took its place; so does a
  // Stop button that lost it to being disabled.
  const lost = !document.activeElement || document.activeElement === document.body;
  if (focused instanceof HTMLElement && focused.hidden) (running ? buttons.stop : buttons.startTraining).focus();
  else if (!running && stopHadFocus && lost) buttons.startTraining.focus();
  if (!running) stopHadFocus = false;
}
let stopHadFocus = false;

replaceChildren();
function replaceChildren(): void {
  root!.replaceChildren(
    statusSection,
    h('vscode-divider', { role: 'separator' }),
    setupSection,
    actions,
    h('vscode-divider', { role: 'separator' }),
    runList,
    h('p', { class: 'muted intro' }, 'Your data stays on this machine; each federation round costs a few kilobytes.'),
  );
}

const restored = host.restoredState();
let status = restored?.status ?? idleViewStatus;
let runs = restored?.runs ?? emptyRunList;
let setup = restored?.setup;
const renderAll = () => {
  render(status);
  renderRuns(runs);
  renderSetup(setup, isRunning(status.trainer), runs.runs.length > 0);
};
renderAll();
host.onMessage((message) => {
  if (message.type === 'status') {
    status = message.status;
    render(status);
  } else if (message.type === 'runs') {
    runs = message.list;
    renderRuns(runs);
  } else if (message.type === 'setup') {
    setup = message.setup;
  } else {
    return;
  }
  renderSetup(setup, isRunning(status.trainer), runs.runs.length > 0);
  host.saveState({ status, runs, ...(setup ? { setup } : {}) });
});
host.post({ type: 'ready' });
