// The dashboard's three charts (chart.js, only the parts used are registered, no eval): seed
// probabilities sorted by rank, loss curves, and communication per round and cumulative vs FedAvg on a
// log scale. Each chart is created once and updated in place as data arrives.
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
    plugins: { legend: { labels: { color: theme.foreground, boxWidth: 12 } } },
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
          { label: 'local step loss', data: [], borderColor: withAlpha(theme.blue, 0.8), pointRadius: 0, borderWidth: 1 },
          { label: 'held-out loss', data: [], borderColor: theme.orange, backgroundColor: theme.orange, pointRadius: 3, borderWidth: 2 },
        ],
      },
      options: {
        ...baseOptions(theme),
        scales: { x: axis(theme, 'local step', { type: 'linear' }), y: axis(theme, 'loss (nats / token)', { type: 'linear' }) },
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

  update(history: RunHistory, seeds: SeedSummary | null): void {
    this.seeds.data.datasets[0]!.data = seeds?.points ?? [];
    this.seeds.data.datasets[1]!.data = seeds ? [{ x: 0, y: 1 }, { x: 100, y: 1 }] : [];
    this.loss.data.datasets[0]!.data = history.stepLoss.map(([x, y]) => ({ x, y }));
    this.loss.data.datasets[1]!.data = history.heldOut.map(([x, y]) => ({ x, y }));
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
  pointCounts(): { seeds: number; loss: number; bytes: number } {
    const count = (chart: Chart<'line' | 'bar', Point[]>) => chart.data.datasets.reduce((n, d) => n + d.data.length, 0);
    return { seeds: count(this.seeds as Chart<'line' | 'bar', Point[]>), loss: count(this.loss as Chart<'line' | 'bar', Point[]>), bytes: count(this.bytes) };
  }

  destroy(): void {
    this.seeds.destroy();
    this.loss.destroy();
    this.bytes.destroy();
  }
}
