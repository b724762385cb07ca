// The dashboard's charts (chart.js, only the parts used are registered, no eval), one measure each: the
// loss (the raw step loss, its moving average, the held-out loss, the base model's as a baseline, and a
// compared run's on the same axes), the held-out measures in percent (top-1 accuracy, next-line exact
// match or Rouge-L, the compared run's beside them), the seed probabilities by rank as a band from the
// lowest to the highest of each bucket with its mean, and communication per round and cumulative vs
// FedAvg on a log scale. Every y axis is computed from the points it draws (series.ts), so the top tick
// is labelled and above every point. Each chart is created once and updated in place.
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
  type Scale,
} from 'chart.js';
import type { RunHistory } from '../../contracts/webview-messages';
import { smoothLosses } from '../../contracts/run-figures';
import { formatBytes } from '../shared/format';
import type { SeedSummary } from './seeds';
import { highestPoint, linearBounds, logBounds, type AxisBounds, type XY } from './series';
import { withAlpha, type ChartTheme } from './theme';

Chart.register(CategoryScale, LinearScale, LogarithmicScale, LineController, LineElement, PointElement, BarController, BarElement, Filler, Legend, Tooltip);

type Point = { x: number; y: number };
type AnyChart = Chart<'line' | 'bar', Point[]>;

/** Dashes of the compared run's lines: told apart by pattern as well as by colour. */
const COMPARED_DASH = [6, 3];

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
    plugins: {
      legend: {
        labels: {
          color: theme.foreground,
          boxWidth: 12,
          filter: (item: { datasetIndex?: number }, data: { datasets: { data: unknown[] }[] }) => (data.datasets[item.datasetIndex ?? 0]?.data.length ?? 0) > 0,
        },
      },
    },
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

/** A y axis drawn on the given bounds: exactly these ticks, all labelled (none skipped), the top one the axis's end. */
function applyBounds(chart: AnyChart, bounds: AxisBounds | null): void {
  const y = chart.options.scales?.y as Record<string, unknown> | undefined;
  if (!y) return;
  y.min = bounds?.min;
  y.max = bounds?.max;
  y.afterBuildTicks = bounds
    ? (scale: Scale) => {
        scale.ticks = bounds.ticks.map((value) => ({ value }));
      }
    : undefined;
}

const xy = (points: XY | undefined): Point[] => (points ?? []).map(([x, y]) => ({ x, y }));
const percent = (points: XY | undefined): Point[] => (points ?? []).map(([x, y]) => ({ x, y: 100 * y }));
const ys = (chart: AnyChart): number[] => chart.data.datasets.flatMap((d) => d.data.map((p) => p.y));

/** What a chart draws on its y axis, for the page to expose (the UI test reads it). */
export interface YAxisFacts {
  /** The highest point drawn, null without points. */
  readonly highest: number | null;
  /** The last tick drawn (labelled), null before a layout. */
  readonly topTick: number | null;
  /** How many ticks are labelled. */
  readonly ticks: number;
}

export interface Compared {
  readonly history: RunHistory;
}

export class DashboardCharts {
  private readonly seeds: Chart<'line', Point[]>;
  private readonly loss: Chart<'line', Point[]>;
  private readonly measures: Chart<'line', Point[]>;
  private readonly bytes: Chart<'bar' | 'line', Point[]>;

  constructor(canvases: { seeds: HTMLCanvasElement; loss: HTMLCanvasElement; measures: HTMLCanvasElement; bytes: HTMLCanvasElement }, theme: ChartTheme) {
    const seedsConfig: ChartConfiguration<'line', Point[]> = {
      type: 'line',
      data: {
        datasets: [
          // The band from each bucket's highest to its lowest probability, so the peak is the true maximum.
          {
            label: 'highest in bucket',
            data: [],
            borderColor: theme.blue,
            backgroundColor: withAlpha(theme.blue, 0.25),
            fill: '+1',
            pointRadius: 0,
            borderWidth: 1.5,
          },
          { label: 'lowest in bucket', data: [], borderColor: withAlpha(theme.blue, 0.6), pointRadius: 0, borderWidth: 1, fill: false },
          { label: 'mean of bucket', data: [], borderColor: theme.foreground, pointRadius: 0, borderWidth: 1, borderDash: [2, 2], fill: false },
          { label: 'uniform (1/K)', data: [], borderColor: theme.orange, borderDash: [6, 4], pointRadius: 0, borderWidth: 1, fill: false },
        ],
      },
      options: {
        ...baseOptions(theme),
        scales: {
          x: axis(theme, 'seed rank (% of K, most likely first)', { type: 'linear', min: 0, max: 100 }),
          y: axis(theme, 'probability relative to uniform (p · K)', { type: 'linear', ticks: { color: theme.foreground, autoSkip: false } }),
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
          { label: 'base model (held-out)', data: [], borderColor: theme.foreground, borderDash: [2, 3], pointRadius: 0, borderWidth: 1 },
          { label: 'compared: step loss, smoothed', data: [], borderColor: theme.purple, borderDash: COMPARED_DASH, pointRadius: 0, borderWidth: 2 },
          {
            label: 'compared: held-out loss',
            data: [],
            borderColor: theme.green,
            backgroundColor: theme.green,
            borderDash: COMPARED_DASH,
            pointStyle: 'rect',
            pointRadius: 3,
            borderWidth: 2,
          },
        ],
      },
      options: {
        ...baseOptions(theme),
        scales: {
          x: axis(theme, 'local step', { type: 'linear', ticks: { color: theme.foreground, precision: 0 } }),
          y: axis(theme, 'loss (nats / token)', { type: 'linear', ticks: { color: theme.foreground, autoSkip: false } }),
        },
      },
    };
    this.loss = new Chart(canvases.loss, lossConfig);

    const measuresConfig: ChartConfiguration<'line', Point[]> = {
      type: 'line',
      data: {
        datasets: [
          {
            label: 'held-out top-1 accuracy',
            data: [],
            borderColor: theme.red,
            backgroundColor: theme.red,
            pointStyle: 'circle',
            pointRadius: 3,
            borderWidth: 2,
          },
          {
            label: 'next-line exact match',
            data: [],
            borderColor: theme.blue,
            backgroundColor: theme.blue,
            pointStyle: 'triangle',
            pointRadius: 4,
            borderWidth: 2,
          },
          {
            label: 'compared: held-out top-1 accuracy',
            data: [],
            borderColor: theme.purple,
            backgroundColor: theme.purple,
            borderDash: COMPARED_DASH,
            pointStyle: 'rect',
            pointRadius: 3,
            borderWidth: 2,
          },
          {
            label: 'compared: next-line exact match',
            data: [],
            borderColor: theme.green,
            backgroundColor: theme.green,
            borderDash: COMPARED_DASH,
            pointStyle: 'rectRot',
            pointRadius: 4,
            borderWidth: 2,
          },
        ],
      },
      options: {
        ...baseOptions(theme),
        scales: {
          x: axis(theme, 'local step', { type: 'linear', ticks: { color: theme.foreground, precision: 0 } }),
          y: axis(theme, 'held-out examples (%)', { type: 'linear', ticks: { color: theme.foreground, autoSkip: false } }),
        },
      },
    };
    this.measures = new Chart(canvases.measures, measuresConfig);

    const bytesConfig: ChartConfiguration<'bar' | 'line', Point[]> = {
      type: 'bar',
      data: {
        datasets: [
          { type: 'bar', label: 'bytes this round (↑+↓)', data: [], backgroundColor: withAlpha(theme.green, 0.7), borderColor: theme.green },
          { type: 'line', label: 'cumulative', data: [], borderColor: theme.blue, backgroundColor: theme.blue, pointRadius: 3, borderWidth: 2 },
          {
            type: 'line',
            label: 'FedAvg cumulative (same clients)',
            data: [],
            borderColor: theme.red,
            backgroundColor: theme.red,
            borderDash: [6, 4],
            pointStyle: 'rect',
            pointRadius: 3,
            borderWidth: 2,
          },
        ],
      },
      options: {
        ...baseOptions(theme),
        scales: {
          x: axis(theme, 'round', { type: 'linear', offset: true, ticks: { color: theme.foreground, precision: 0 } }),
          y: axis(theme, 'bytes (log scale)', {
            type: 'logarithmic',
            ticks: { color: theme.foreground, autoSkip: false, callback: (v: number | string) => formatBytes(Number(v)) },
          }),
        },
        plugins: {
          ...baseOptions(theme).plugins,
          tooltip: { callbacks: { label: (item) => `${item.dataset.label ?? ''}: ${formatBytes(item.parsed.y ?? 0)}` } },
        },
      },
    };
    this.bytes = new Chart(canvases.bytes, bytesConfig);
  }

  /** Draws a run's history, and the compared run's on the same axes (null: none, or the same run). */
  update(history: RunHistory, seeds: SeedSummary | null, compare: Compared | null = null): void {
    const s = this.seeds.data.datasets;
    s[0]!.data = seeds?.bands.map((b) => ({ x: b.x, y: b.max })) ?? [];
    s[1]!.data = seeds?.bands.map((b) => ({ x: b.x, y: b.min })) ?? [];
    s[2]!.data = seeds?.bands.map((b) => ({ x: b.x, y: b.mean })) ?? [];
    s[3]!.data = seeds
      ? [
          { x: 0, y: 1 },
          { x: 100, y: 1 },
        ]
      : [];
    applyBounds(this.seeds, linearBounds([0, ...ys(this.seeds)], { floor: 0 }));

    const loss = this.loss.data.datasets;
    // Compared, the raw step losses of two runs would hide both curves: their moving averages are drawn.
    loss[0]!.data = compare ? [] : xy(history.stepLoss);
    loss[1]!.data = xy(smoothLosses(history.stepLoss));
    loss[2]!.data = xy(history.heldOut);
    // The base model's held-out loss (the run's first evaluation) across the run, when there is a curve to compare it with.
    const baseline = history.heldOut[0];
    const lastX = Math.max(history.stepLoss.at(-1)?.[0] ?? 0, history.heldOut.at(-1)?.[0] ?? 0);
    loss[3]!.data =
      baseline && lastX > baseline[0]
        ? [
            { x: baseline[0], y: baseline[1] },
            { x: lastX, y: baseline[1] },
          ]
        : [];
    loss[4]!.data = compare ? xy(smoothLosses(compare.history.stepLoss)) : [];
    loss[5]!.data = compare ? xy(compare.history.heldOut) : [];
    const shownPrefix = compare ? 'shown: ' : '';
    loss[1]!.label = `${shownPrefix}step loss, smoothed`;
    loss[2]!.label = `${shownPrefix}held-out loss`;
    applyBounds(this.loss, linearBounds(ys(this.loss)));

    const m = this.measures.data.datasets;
    const generationLabel = (h: RunHistory) => (h.generationMetric === 'rougeL' ? 'Rouge-L of answers' : 'next-line exact match');
    m[0]!.data = percent(history.accuracy);
    m[1]!.data = percent(history.generation);
    m[2]!.data = compare ? percent(compare.history.accuracy) : [];
    m[3]!.data = compare ? percent(compare.history.generation) : [];
    m[0]!.label = `${shownPrefix}held-out top-1 accuracy`;
    m[1]!.label = `${shownPrefix}${generationLabel(history)}`;
    m[3]!.label = `compared: ${compare ? generationLabel(compare.history) : 'next-line exact match'}`;
    applyBounds(this.measures, linearBounds([0, ...ys(this.measures)], { floor: 0, ceiling: 100 }));

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
    applyBounds(this.bytes, logBounds(ys(this.bytes)));
    for (const chart of this.all()) chart.update('none');
  }

  /** Points drawn per chart (read by the UI test). */
  pointCounts(): { seeds: number; loss: number; measures: number; bytes: number; heldOut: number; compare: number; accuracy: number } {
    const count = (chart: AnyChart) => chart.data.datasets.reduce((n, d) => n + d.data.length, 0);
    const loss = this.loss.data.datasets;
    const m = this.measures.data.datasets;
    return {
      seeds: count(this.seeds as AnyChart),
      loss: count(this.loss as AnyChart),
      measures: count(this.measures as AnyChart),
      bytes: count(this.bytes),
      heldOut: loss[2]!.data.length,
      compare: loss[4]!.data.length + loss[5]!.data.length + m[2]!.data.length + m[3]!.data.length,
      accuracy: m[0]!.data.length,
    };
  }

  /** The highest point and the top tick of each chart's y axis (read by the UI test). */
  yAxes(): Record<'seeds' | 'loss' | 'measures' | 'bytes', YAxisFacts> {
    const facts = (chart: AnyChart): YAxisFacts => {
      const ticks = chart.scales.y?.ticks ?? [];
      return { highest: highestPoint(...chart.data.datasets.map((d) => d.data)), topTick: ticks.at(-1)?.value ?? null, ticks: ticks.length };
    };
    return { seeds: facts(this.seeds as AnyChart), loss: facts(this.loss as AnyChart), measures: facts(this.measures as AnyChart), bytes: facts(this.bytes) };
  }

  /** The x of the last held-out loss and of the last measure drawn for the run shown (read by the UI test). */
  lastX(): { heldOut: number | null; accuracy: number | null } {
    return { heldOut: this.loss.data.datasets[2]!.data.at(-1)?.x ?? null, accuracy: this.measures.data.datasets[0]!.data.at(-1)?.x ?? null };
  }

  /** Labels of the datasets that have points, loss chart then measures chart (read by the UI test). */
  lossDatasets(): string[] {
    return [this.loss, this.measures].flatMap((c) => c.data.datasets.filter((d) => d.data.length > 0).map((d) => d.label ?? ''));
  }

  destroy(): void {
    for (const chart of this.all()) chart.destroy();
  }

  private all(): AnyChart[] {
    return [this.seeds as AnyChart, this.loss as AnyChart, this.measures as AnyChart, this.bytes];
  }
}
