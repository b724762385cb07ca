// The dashboard's three charts (chart.js, only the parts used are registered, no eval): seed
// probabilities sorted by rank, loss curves (the raw step loss, its moving average, the held-out loss
// and the base model's as a baseline, and a compared run's), and communication per round and cumulative
// vs FedAvg on a log scale. Each chart is created once and updated in place as data arrives.
import {
  CategoryScale,
  Chart,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  LogarithmicScale,
  PointElement,
  Tooltip,
  BarController,
  BarElement,
  type ChartConfiguration,
} from 'chart.js';
import type { RunHistory } from '../../contracts/webview-messages';
import { smoothLosses } from '../../contracts/run-figures';
import { formatBytes } from '../shared/format';
import type { SeedSummary } from './seeds';
import { withAlpha, type ChartTheme } from './theme';

Chart.register(CategoryScale, LinearScale, LogarithmicScale, LineController, LineElement, PointElement, BarController, BarElement, Filler, Legend, Tooltip);

type Point = { x: number; y: number };

function baseOptions(theme: ChartTheme) {
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: false as const,
    parsing: false as const,
    normalized: true,
    color: theme.foreground,
    font: { family: theme.font },
    interaction: { mode: 'nearest' as const, intersect: false },
    // Datasets without points (a comparison not asked for, a baseline not yet known) stay out of the legend.
    plugins: { legend: { labels: { color: theme.foreground, boxWidth: 12, filter: (item: { datasetIndex?: number }, data: { datasets: { data: unknown[] }[] }) => (data.datasets[item.datasetIndex ?? 0]?.data.length ?? 0) > 0 } } },
  };
}

function axis(theme: ChartTheme, title: string, extra: Record<string, unknown> = {}) {
  return {
    title: { display: true, text: title, color: theme.foreground },
    ticks: { color: theme.foreground },
    grid: { color: theme.grid },
    border: { color: theme.grid },
    ...extra,
  };
}

export class DashboardCharts {
  private readonly seeds: Chart<'line', Point[]>;
  private readonly loss: Chart<'line', Point[]>;
  private readonly bytes: Chart<'bar' | 'line', Point[]>;

  constructor(canvases: { seeds: HTMLCanvasElement; loss: HTMLCanvasElement; bytes: HTMLCanvasElement }, theme: ChartTheme) {
    const seedsConfig: ChartConfiguration<'line', Point[]> = {
      type: 'line',
      data: {
        datasets: [
          { label: 'p · K (sorted)', data: [], borderColor: theme.blue, backgroundColor: withAlpha(theme.blue, 0.25), fill: 'origin', pointRadius: 0, borderWidth: 1.5 },
          { label: 'uniform (1/K)', data: [], borderColor: theme.orange, borderDash: [6, 4], pointRadius: 0, borderWidth: 1, fill: false },
        ],
      },
      options: {
        ...baseOptions(theme),
        scales: {
          x: axis(theme, 'seed rank (% of K, most likely first)', { type: 'linear', min: 0, max: 100 }),
          y: axis(theme, 'probability relative to uniform', { type: 'linear', beginAtZero: true }),
        },
      },
    };
    this.seeds = new Chart(canvases.seeds, seedsConfig);

    const lossConfig: ChartConfiguration<'line', Point[]> = {
      type: 'line',
      data: {
        datasets: [
          { label: 'step loss (raw)', data: [], borderColor: withAlpha(theme.blue, 0.3), pointRadius: 0, borderWidth: 1 },
          { label: 'step loss, smoothed', data: [], borderColor: theme.blue, pointRadius: 0, borderWidth: 2 },
          { label: 'held-out loss', data: [], borderColor: theme.orange, backgroundColor: theme.orange, pointRadius: 3, borderWidth: 2 },
          { label: 'base model (held-out)', data: [], borderColor: theme.foreground, borderDash: [4, 4], pointRadius: 0, borderWidth: 1 },
          { label: 'compared: smoothed', data: [], borderColor: theme.purple, borderDash: [6, 3], pointRadius: 0, borderWidth: 2 },
          { label: 'compared: held-out', data: [], borderColor: theme.green, backgroundColor: theme.green, borderDash: [6, 3], pointRadius: 3, borderWidth: 2 },
          // Measures a person can read, on the right axis: how often the model gets the next token, the next line.
          { label: 'held-out top-1 accuracy', data: [], yAxisID: 'percent', borderColor: theme.red, backgroundColor: theme.red, pointStyle: 'rect', pointRadius: 3, borderWidth: 2 },
          { label: 'next-line exact match', data: [], yAxisID: 'percent', borderColor: theme.purple, backgroundColor: theme.purple, pointStyle: 'triangle', pointRadius: 3, borderWidth: 2 },
        ],
      },
      options: {
        ...baseOptions(theme),
        scales: {
          x: axis(theme, 'local step', { type: 'linear' }),
          y: axis(theme, 'loss (nats / token)', { type: 'linear' }),
          percent: axis(theme, 'held-out accuracy / match (%)', { type: 'linear', position: 'right', min: 0, grid: { drawOnChartArea: false }, display: 'auto' }),
        },
      },
    };
    this.loss = new Chart(canvases.loss, lossConfig);

    const bytesConfig: ChartConfiguration<'bar' | 'line', Point[]> = {
      type: 'bar',
      data: {
        datasets: [
          { type: 'bar', label: 'bytes this round (↑+↓)', data: [], backgroundColor: withAlpha(theme.green, 0.7), borderColor: theme.green },
          { type: 'line', label: 'cumulative', data: [], borderColor: theme.blue, backgroundColor: theme.blue, pointRadius: 2, borderWidth: 2 },
          { type: 'line', label: 'FedAvg cumulative (same clients)', data: [], borderColor: theme.red, backgroundColor: theme.red, borderDash: [6, 4], pointRadius: 2, borderWidth: 2 },
        ],
      },
      options: {
        ...baseOptions(theme),
        scales: {
          x: axis(theme, 'round', { type: 'linear', ticks: { color: theme.foreground, precision: 0 } }),
          y: axis(theme, 'bytes (log scale)', { type: 'logarithmic', ticks: { color: theme.foreground, callback: (v: number | string) => formatBytes(Number(v)) } }),
        },
        plugins: {
          ...baseOptions(theme).plugins,
          tooltip: { callbacks: { label: (item) => `${item.dataset.label ?? ''}: ${formatBytes(item.parsed.y ?? 0)}` } },
        },
      },
    };
    this.bytes = new Chart(canvases.bytes, bytesConfig);
  }

  update(history: RunHistory, seeds: SeedSummary | null, compare: { label: string; history: RunHistory } | null = null): void {
    this.seeds.data.datasets[0]!.data = seeds?.points ?? [];
    this.seeds.data.datasets[1]!.data = seeds ? [{ x: 0, y: 1 }, { x: 100, y: 1 }] : [];
    const xy = (points: readonly (readonly [number, number])[]) => points.map(([x, y]) => ({ x, y }));
    const loss = this.loss.data.datasets;
    loss[0]!.data = xy(history.stepLoss);
    loss[1]!.data = xy(smoothLosses(history.stepLoss));
    loss[2]!.data = xy(history.heldOut);
    // The base model's held-out loss (the run's first evaluation) across the run, when there is a curve to compare it with.
    const baseline = history.heldOut[0];
    const lastX = Math.max(history.stepLoss.at(-1)?.[0] ?? 0, history.heldOut.at(-1)?.[0] ?? 0);
    loss[3]!.data = baseline && lastX > baseline[0] ? [{ x: baseline[0], y: baseline[1] }, { x: lastX, y: baseline[1] }] : [];
    loss[4]!.data = compare ? xy(smoothLosses(compare.history.stepLoss)) : [];
    loss[5]!.data = compare ? xy(compare.history.heldOut) : [];
    loss[4]!.label = compare ? `${compare.label}: smoothed` : 'compared: smoothed';
    loss[5]!.label = compare ? `${compare.label}: held-out` : 'compared: held-out';
    const percent = (points: readonly (readonly [number, number])[] | undefined) => (points ?? []).map(([x, y]) => ({ x, y: 100 * y }));
    loss[6]!.data = percent(history.accuracy);
    loss[7]!.data = percent(history.generation);
    loss[7]!.label = history.generationMetric === 'rougeL' ? 'Rouge-L of answers' : 'next-line exact match';
    let cumulative = 0;
    let fedAvg = 0;
    const perRound: Point[] = [];
    const total: Point[] = [];
    const fedAvgTotal: Point[] = [];
    for (const r of history.rounds) {
      cumulative += r.up + r.down;
      fedAvg += r.fedAvg;
      perRound.push({ x: r.round, y: r.up + r.down });
      total.push({ x: r.round, y: cumulative });
      fedAvgTotal.push({ x: r.round, y: fedAvg });
    }
    this.bytes.data.datasets[0]!.data = perRound;
    this.bytes.data.datasets[1]!.data = total;
    this.bytes.data.datasets[2]!.data = fedAvgTotal;
    for (const chart of [this.seeds, this.loss, this.bytes]) chart.update('none');
  }

  /** Points drawn per chart (read by the UI test). */
  pointCounts(): { seeds: number; loss: number; bytes: number; heldOut: number; compare: number; accuracy: number } {
    const count = (chart: Chart<'line' | 'bar', Point[]>) => chart.data.datasets.reduce((n, d) => n + d.data.length, 0);
    const loss = this.loss.data.datasets;
    return {
      seeds: count(this.seeds as Chart<'line' | 'bar', Point[]>),
      loss: count(this.loss as Chart<'line' | 'bar', Point[]>),
      bytes: count(this.bytes),
      heldOut: loss[2]!.data.length,
      compare: loss[4]!.data.length + loss[5]!.data.length,
      accuracy: loss[6]!.data.length,
    };
  }

  /** Labels of the loss chart's datasets that have points (read by the UI test). */
  lossDatasets(): string[] {
    return this.loss.data.datasets.filter((d) => d.data.length > 0).map((d) => d.label ?? '');
  }

  destroy(): void {
    this.seeds.destroy();
    this.loss.destroy();
    this.bytes.destroy();
  }
}
