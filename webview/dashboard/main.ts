// Dashboard webview: one run at a glance — the run in progress, or a past run opened from the run list,
// optionally compared with another run (both runs' figures side by side, the compared run's curves on the
// same axes). A run card (progress with a time estimate, held-out loss against the base model, bytes
// against FedAvg, evaluations), the loss curves, the held-out measures, and for a federation the seed
// probabilities over all K seeds and the bytes per round. The figures come worded from the extension,
// the same as the sidebar's and the status bar's. Status and view are saved with setState, so a hidden,
// reopened or restored-after-reload panel shows them at once.
import { connectToHost } from '../shared/vscodeApi';
import { registerToolkit } from '../shared/toolkit';
import { h, replaceChildren, setHidden, setText } from '../shared/dom';
import { formatBytes, formatLoss } from '../shared/format';
import { describeWeights } from '../../contracts/trainer-payloads';
import { emptyDashboardView, idleViewStatus, type DashboardView, type ViewStatus } from '../../contracts/webview-messages';
import { stateLabel } from '../shared/statusText';
import { DashboardCharts } from './charts';
import { summariseSeeds, type SeedSummary } from './seeds';
import { comparisonRows, sameRuns, type RunSide } from './series';
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

// ---- the page, built once ---------------------------------------------------------------------------

const title = h('h1', {}, 'FedKSeed Dashboard');
const phase = h('span', { class: 'phase-pill', 'data-testid': 'phase', 'data-phase': 'idle' }, 'Idle');
const round = h('span', { class: 'muted', 'data-testid': 'round' });
const server = h('span', { class: 'muted', 'data-testid': 'header-server' });
const modelName = h('span', { class: 'muted', 'data-testid': 'header-model' });
const provider = h('span', { class: 'muted', 'data-testid': 'header-provider' });
const header = h('header', { class: 'page-header' }, title, phase, round, server, modelName, provider);

const bannerText = h('span', { 'data-testid': 'compare-text' });
const backToLive = h('vscode-button', { appearance: 'secondary', 'data-testid': 'show-live' }, 'Back to the Current Run');
backToLive.addEventListener('click', () => host.post({ type: 'runAction', action: 'showLive' }));
const stopComparing = h('vscode-button', { appearance: 'secondary', 'data-testid': 'stop-comparing' }, 'Stop Comparing');
stopComparing.addEventListener('click', () => host.post({ type: 'runAction', action: 'stopComparing' }));
const banner = h('div', { class: 'compare-banner', 'data-testid': 'compare-banner', role: 'note' }, bannerText, backToLive, stopComparing);

const empty = h(
  'section',
  { class: 'empty-state', 'data-testid': 'empty-state' },
  h('div', { class: 'empty-state-icon', 'aria-hidden': 'true' }),
  h('h2', {}, 'No training yet'),
  h(
    'p',
    { class: 'muted' },
    "Start training or join a federation: loss curves, held-out evaluations, seed probabilities and the bytes exchanged each round appear here as they happen, and every run is kept in the sidebar's run list.",
  ),
  h(
    'ul',
    { class: 'empty-state-list' },
    h('li', {}, h('strong', {}, 'Loss curves'), ' — step loss, its moving average, and the held-out loss against the base model'),
    h('li', {}, h('strong', {}, 'Seed probabilities'), ' — how FedKSeed-Pro weights each of the K shared seeds'),
    h('li', {}, h('strong', {}, 'Communication'), ' — bytes per round and in total, against what FedAvg would move'),
  ),
);

const runTitle = h('h2', { 'data-testid': 'run-title' }, 'Run');
const runSummary = h('p', { class: 'run-summary', 'data-testid': 'run-summary' });
const runFigures = h('dl', { class: 'run-figures', 'data-testid': 'run-figures' });
const evaluations = h('ul', { class: 'evaluations', 'data-testid': 'evaluations', 'aria-label': 'Evaluations' });
// A local run has no seeds to weigh nor rounds to count: one line says so instead of two empty charts.
const localNote = h(
  'p',
  { class: 'muted local-note', 'data-testid': 'local-note' },
  'Seed probabilities and bytes per round belong to federations: a local run exchanges nothing.',
);
const runCard = h('section', { class: 'chart-card run-card', 'data-testid': 'run-card' }, runTitle, runSummary, runFigures, evaluations, localNote);

// Two runs side by side: a table of their figures, or one line when they are the same.
const compareTitle = h('h2', {}, 'Compared runs');
const compareSame = h('p', { 'data-testid': 'compare-same', role: 'status' });
const compareHead = h('tr', {});
const compareBody = h('tbody', {});
const compareTable = h(
  'table',
  { class: 'compare-table', 'data-testid': 'compare-table' },
  h('caption', { class: 'muted' }, 'Shown: solid lines · compared: dashed lines'),
  h('thead', {}, compareHead),
  compareBody,
);
const compareCard = h('section', { class: 'chart-card compare-card', 'data-testid': 'compare-card' }, compareTitle, compareSame, compareTable);

const lossCard = card('loss', 'Loss');
const measuresCard = card('measures', 'Held-out accuracy');
const seedsCard = card('seeds', 'Seed probabilities');
const bytesCard = card('bytes', 'Communication');
const grid = h(
  'div',
  { class: 'chart-grid', 'data-testid': 'charts' },
  runCard,
  compareCard,
  lossCard.section,
  measuresCard.section,
  seedsCard.section,
  bytesCard.section,
);
replaceChildren(root, header, h('vscode-divider', { role: 'separator' }), banner, empty, grid);

const canvases = () => ({ seeds: seedsCard.canvas, loss: lossCard.canvas, measures: measuresCard.canvas, bytes: bytesCard.canvas });
let charts = new DashboardCharts(canvases(), readTheme());

// ---- updates ----------------------------------------------------------------------------------------

function renderHeader({ trainer, model, figures }: ViewStatus, view: DashboardView): void {
  // The header follows the run in progress; a past run opened from the list says so in the banner.
  setText(phase, stateLabel(trainer));
  phase.setAttribute('data-phase', trainer.state);
  setText(round, view.live ? figures.text.progress : view.figures.text.progress);
  setText(server, trainer.server ?? '');
  setText(modelName, model ?? '');
  setText(provider, trainer.provider ?? '');
}

function seedsSubtitle(seeds: SeedSummary | null): string {
  if (!seeds) return 'No seed distribution yet.';
  const rel = (p: number) => `${(p * seeds.k).toFixed(2)}× uniform`;
  return `K = ${seeds.k.toLocaleString('en-US')}, round ${seeds.round} · max ${seeds.max.toExponential(2)} (${rel(seeds.max)}) · min ${seeds.min.toExponential(2)} (${rel(seeds.min)}) · mean ${seeds.mean.toExponential(2)}`;
}

function lossSubtitle(view: DashboardView): string {
  const { history, figures } = view;
  const lastStep = history.stepLoss.at(-1);
  if (!lastStep && history.heldOut.length === 0) return 'No losses yet.';
  const held = history.heldOut.length > 0 ? ` · held-out ${figures.text.heldOut}` : '';
  return `step ${lastStep?.[0] ?? 0}: loss ${formatLoss(lastStep?.[1] ?? null)}${held}`;
}

function measuresSubtitle(view: DashboardView): string {
  const { history } = view;
  // Before → now, in words anyone can read: how often the model gets the next token (and the next line).
  const change = (points: readonly (readonly [number, number])[] | undefined, what: string) =>
    points && points.length > 0 ? `${what} ${(100 * points[0][1]).toFixed(1)}% → ${(100 * (points.at(-1) as readonly [number, number])[1]).toFixed(1)}%` : '';
  const parts = [
    change(history.accuracy, 'top-1 accuracy'),
    change(history.generation, history.generationMetric === 'rougeL' ? 'Rouge-L' : 'next line exact'),
  ].filter((p) => p !== '');
  return parts.length > 0 ? parts.join(' · ') : 'No held-out measures yet.';
}

function bytesSubtitle(view: DashboardView): string {
  const { figures } = view;
  if (figures.bytes.lastRound === null) return 'No round committed yet.';
  const overhead = figures.bytes.overhead > 0 ? ` (+ ${formatBytes(figures.bytes.overhead)} to connect and sync)` : '';
  return `last round ${figures.text.lastRound} · ${figures.text.total}${overhead} vs FedAvg ${formatBytes(figures.bytes.fedAvg)} (${figures.text.ratio})`;
}

function figureRow(term: string, value: string, testId: string): HTMLElement[] {
  return [h('dt', {}, term), h('dd', { 'data-testid': testId }, value)];
}

function renderRun(view: DashboardView): void {
  const run = view.run;
  setText(runTitle, run ? run.title : 'Run');
  const when = run ? new Date(run.startedAt).toLocaleString() : '';
  setText(
    runSummary,
    run ? `${run.title} · ${when} · ${run.state}${run.error ? ` (${run.error})` : ''} · ${run.model}${run.server ? ` · ${run.server}` : ''}` : '',
  );
  const f = view.figures;
  const federation = run?.kind === 'federation';
  runFigures.replaceChildren(
    ...figureRow(federation ? 'Rounds' : 'Steps', f.text.progress, 'figure-progress'),
    ...figureRow('Held-out loss', f.text.heldOut, 'figure-held-out'),
    ...(federation
      ? [
          ...figureRow('Last round', f.text.lastRound, 'figure-last-round'),
          ...figureRow('Total', `${f.text.total}${f.text.ratio ? ` · ${f.text.ratio}` : ''}`, 'figure-total'),
        ]
      : []),
  );
  evaluations.replaceChildren(
    ...(run?.evaluations ?? []).map((e) =>
      h(
        'li',
        { 'data-testid': 'evaluation' },
        `${new Date(e.at).toLocaleString()}: held-out loss ${formatLoss(e.loss)}, perplexity ${e.perplexity.toFixed(2)}${typeof e.accuracy === 'number' ? `, top-1 accuracy ${(100 * e.accuracy).toFixed(1)}%` : ''}${typeof e.generation === 'number' ? `, ${e.generationMetric === 'rougeL' ? 'Rouge-L' : 'next-line exact match'} ${(100 * e.generation).toFixed(1)}%` : ''}, ${e.examples} of ${e.heldOutExamples} held-out examples (${e.tokens.toLocaleString('en-US')} tokens) — ${describeWeights(e.weights)}`,
      ),
    ),
  );
  setHidden(evaluations, (run?.evaluations.length ?? 0) === 0);
}

const runLabel = (r: { title: string; startedAt: number }) => `${r.title} of ${new Date(r.startedAt).toLocaleString()}`;

/** The compared run, or null when there is none or it is the same as the run shown (drawn once, said in words). */
function renderCompare(view: DashboardView): RunSide | null {
  const compare = view.compare;
  const shown: RunSide | null = view.run ? { run: view.run, history: view.history } : null;
  setHidden(compareCard, compare === null || shown === null);
  if (!compare || !shown) return null;
  const same = sameRuns(shown, compare);
  setHidden(compareSame, !same);
  setHidden(compareTable, same);
  if (same) {
    setText(
      compareSame,
      shown.run.id === compare.run.id
        ? `${runLabel(shown.run)} is compared with itself: one run, shown once.`
        : `${runLabel(shown.run)} and ${runLabel(compare.run)} have the same losses, measures and bytes: their curves are one, shown once.`,
    );
    return null;
  }
  compareHead.replaceChildren(
    h('th', { scope: 'col' }, 'Figure'),
    h(
      'th',
      { scope: 'col', 'data-testid': 'compare-shown-title' },
      h('span', { class: 'swatch swatch-shown', 'aria-hidden': 'true' }),
      `Shown: ${runLabel(shown.run)}`,
    ),
    h(
      'th',
      { scope: 'col', 'data-testid': 'compare-compared-title' },
      h('span', { class: 'swatch swatch-compared', 'aria-hidden': 'true' }),
      `Compared: ${runLabel(compare.run)}`,
    ),
  );
  compareBody.replaceChildren(
    ...comparisonRows(shown, compare).map((r) =>
      h(
        'tr',
        { 'data-testid': 'compare-row', 'data-figure': r.label },
        h('th', { scope: 'row' }, r.label),
        h('td', { 'data-testid': 'compare-shown' }, r.shown),
        h('td', { 'data-testid': 'compare-compared' }, r.compared),
      ),
    ),
  );
  return compare;
}

function exposeAxes(): void {
  // What each chart draws, for the UI test: its highest point and the top tick of its y axis.
  const axes = charts.yAxes();
  for (const [name, c] of [
    ['seeds', seedsCard],
    ['loss', lossCard],
    ['measures', measuresCard],
    ['bytes', bytesCard],
  ] as const) {
    c.canvas.dataset.highest = String(axes[name].highest ?? '');
    c.canvas.dataset.topTick = String(axes[name].topTick ?? '');
  }
}

function renderView(view: DashboardView): void {
  const { history, run } = view;
  const hasData = run !== null || history.stepLoss.length > 0 || history.heldOut.length > 0 || history.rounds.length > 0;
  setHidden(empty, hasData);
  setHidden(grid, !hasData);
  // Seeds and bytes belong to federations: a local run shows its run card and loss curves and says why
  // there is nothing more, so its charts take the page.
  const federation = run?.kind === 'federation' || history.rounds.length > 0;
  setHidden(seedsCard.section, !federation);
  setHidden(bytesCard.section, !federation);
  setHidden(localNote, federation || run?.kind !== 'local');
  setHidden(lossCard.section, run?.kind === 'evaluation');
  const measured = (history.accuracy?.length ?? 0) + (history.generation?.length ?? 0) + (view.compare?.history.accuracy?.length ?? 0) > 0;
  setHidden(measuresCard.section, run?.kind === 'evaluation' || !measured);
  grid.dataset.layout = federation ? 'federation' : 'local';
  grid.dataset.measures = measured ? 'shown' : 'none';

  const comparing = view.compare !== null;
  setHidden(banner, view.live && !comparing);
  setHidden(backToLive, view.live);
  setHidden(stopComparing, !comparing);
  const shown = run ? `${run.title} of ${new Date(run.startedAt).toLocaleString()}` : 'no run';
  setText(bannerText, `${view.live ? 'Current run' : `Showing ${shown}`}${view.compare ? ` · compared with ${runLabel(view.compare.run)} (dashed)` : ''}`);

  const seeds = history.seeds ? summariseSeeds(history.seeds.round, history.seeds.float32Base64) : null;
  setText(seedsCard.subtitle, seedsSubtitle(seeds));
  setText(lossCard.subtitle, lossSubtitle(view));
  setText(measuresCard.subtitle, measuresSubtitle(view));
  setText(bytesCard.subtitle, bytesSubtitle(view));
  renderRun(view);
  const compared = renderCompare(view);
  charts.update(history, seeds, compared ? { history: compared.history } : null);
  const counts = charts.pointCounts();
  seedsCard.canvas.dataset.points = String(counts.seeds);
  lossCard.canvas.dataset.points = String(counts.loss);
  lossCard.canvas.dataset.heldOutPoints = String(counts.heldOut);
  lossCard.canvas.dataset.comparePoints = String(counts.compare);
  lossCard.canvas.dataset.datasets = charts.lossDatasets().join('|');
  measuresCard.canvas.dataset.points = String(counts.measures);
  measuresCard.canvas.dataset.accuracyPoints = String(counts.accuracy);
  const last = charts.lastX();
  lossCard.canvas.dataset.lastX = String(last.heldOut ?? '');
  measuresCard.canvas.dataset.lastX = String(last.accuracy ?? '');
  bytesCard.canvas.dataset.points = String(counts.bytes);
  exposeAxes();
}

const restored = host.restoredState();
let status = restored?.status ?? idleViewStatus;
let view = restored?.dashboard ?? emptyDashboardView;
renderHeader(status, view);
renderView(view);

// VS Code swaps the body's theme class when the colour theme changes: redraw with the new colours.
new MutationObserver(() => {
  charts.destroy();
  charts = new DashboardCharts(canvases(), readTheme());
  renderView(view);
}).observe(document.body, { attributes: true, attributeFilter: ['class'] });

host.onMessage((message) => {
  switch (message.type) {
    case 'status':
      status = message.status;
      renderHeader(status, view);
      break;
    case 'dashboard':
      view = message.view;
      renderHeader(status, view);
      renderView(view);
      break;
    case 'runs':
    case 'setup':
      return;
  }
  host.saveState({ status, dashboard: view });
});
host.post({ type: 'ready' });
