// The data behind the dashboard's charts, as pure functions (no DOM, no chart.js) so that what a chart
// claims can be tested: axis bounds that hold every plotted point with a labelled top tick, the seed
// distribution reduced without losing its extremes, and the figures of two runs side by side.
import { computeFigures, formatCount } from '../../contracts/run-figures';
import type { RunHistory, RunSummary } from '../../contracts/webview-messages';
import { formatBytes, formatLoss } from '../shared/format';

export type XY = readonly (readonly [number, number])[];

// ---- axis bounds --------------------------------------------------------------------------------------

export interface AxisBounds {
  readonly min: number;
  readonly max: number;
  /** Every tick drawn, lowest first; the last one is `max`, so the top label is above every point. */
  readonly ticks: readonly number[];
}

const finite = (values: Iterable<number>): number[] => [...values].filter((v) => Number.isFinite(v));

/** The "nice" step (1, 2 or 5 × 10ⁿ) nearest above `raw`. */
function niceStep(raw: number): number {
  const exp = Math.floor(Math.log10(raw));
  const base = 10 ** exp;
  const m = raw / base;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * base;
}

/** Tick values without float noise (0.30000000000000004 → 0.3). */
const clean = (v: number, step: number): number => Number(v.toFixed(Math.max(0, -Math.floor(Math.log10(step)) + 1)));

/**
 * Linear bounds on multiples of a nice step, with the highest point strictly below the top tick (a
 * point's marker drawn on the chart's top edge is cut in half) and at most about `maxTicks` ticks.
 * `floor`/`ceiling` keep the axis inside a range that means something (0–100 %).
 */
export function linearBounds(values: Iterable<number>, options: { maxTicks?: number; floor?: number; ceiling?: number } = {}): AxisBounds | null {
  const v = finite(values);
  if (v.length === 0) return null;
  let lo = Math.min(...v);
  let hi = Math.max(...v);
  if (options.floor !== undefined) lo = Math.min(lo, options.floor);
  if (hi === lo) {
    const pad = hi === 0 ? 1 : Math.abs(hi) * 0.05;
    hi += pad;
    if (options.floor === undefined) lo -= pad;
  }
  const maxTicks = options.maxTicks ?? 7;
  let step = niceStep((hi - lo) / (maxTicks - 1));
  let min = Math.floor(lo / step) * step;
  let max = Math.ceil(hi / step) * step;
  // Headroom: the highest point sits below the top tick by at least 2 % of the axis.
  if (max - hi < 0.02 * (max - min)) max += step;
  if ((max - min) / step > maxTicks) {
    step = niceStep((max - min) / (maxTicks - 1));
    min = Math.floor(lo / step) * step;
    max = Math.ceil(hi / step) * step;
    if (max - hi < 0.02 * (max - min)) max += step;
  }
  if (options.ceiling !== undefined && max > options.ceiling && hi <= options.ceiling) max = options.ceiling;
  const ticks: number[] = [];
  for (let t = min; t <= max + step / 1e6; t += step) ticks.push(clean(t, step));
  return { min: clean(min, step), max: ticks.at(-1)!, ticks };
}

/**
 * Log bounds on 1-2-5 values: the top tick is the first of them above the highest point (with a
 * little room), the bottom the last at or below the lowest; between, powers of ten (and 2s and 5s
 * when the axis spans few decades). Non-positive values cannot be drawn on a log axis and are ignored.
 */
export function logBounds(values: Iterable<number>): AxisBounds | null {
  const v = finite(values).filter((x) => x > 0);
  if (v.length === 0) return null;
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  const grid = (exp: number) => [1, 2, 5].map((m) => m * 10 ** exp);
  const candidates: number[] = [];
  for (let exp = Math.floor(Math.log10(lo)) - 1; exp <= Math.ceil(Math.log10(hi)) + 1; exp++) candidates.push(...grid(exp));
  const max = candidates.find((c) => c > hi * 1.05)!;
  const min = [...candidates].reverse().find((c) => c <= lo)!;
  const decades = Math.log10(max / min);
  const ticks = candidates.filter(
    (c) => c >= min && c <= max && (decades <= 2.5 || Math.abs(Math.log10(c) - Math.round(Math.log10(c))) < 1e-9 || c === min || c === max),
  );
  return { min, max, ticks: ticks.map((t) => Number(t.toPrecision(6))) };
}

// ---- seed probabilities -------------------------------------------------------------------------------

export interface SeedBand {
  /** Rank as a percentage of K (0–100), most likely first. */
  readonly x: number;
  /** The bucket's largest, mean and smallest probability, relative to uniform (p·K). */
  readonly max: number;
  readonly mean: number;
  readonly min: number;
}

/**
 * The K probabilities sorted from most to least likely, in at most `maxPoints` buckets, each keeping
 * its extremes: the top of the band is the largest probability of its bucket, so the chart's peak is
 * the distribution's maximum (an average per bucket would hide it).
 */
export function seedBands(probabilities: ArrayLike<number>, maxPoints = 512): SeedBand[] {
  const p = Array.from(probabilities).sort((a, b) => b - a);
  const k = p.length;
  const bucket = Math.max(1, Math.ceil(k / maxPoints));
  const bands: SeedBand[] = [];
  for (let start = 0; start < k; start += bucket) {
    const slice = p.slice(start, start + bucket);
    const mean = slice.reduce((a, b) => a + b, 0) / slice.length;
    // The first bucket is drawn from rank 0, the last to 100 %, so the band spans the whole axis.
    const x = start === 0 ? 0 : start + slice.length >= k ? 100 : (100 * (start + slice.length / 2)) / k;
    bands.push({ x, max: slice[0]! * k, mean: mean * k, min: slice.at(-1)! * k });
  }
  return bands;
}

// ---- two runs side by side ----------------------------------------------------------------------------

export interface RunSide {
  readonly run: RunSummary;
  readonly history: RunHistory;
}

export interface FigureRow {
  readonly label: string;
  readonly shown: string;
  readonly compared: string;
}

/** Held-out loss at the first evaluation (the base model), at its best, and at the last. */
export function heldOutSummary(history: RunHistory): { start: number; best: number; last: number } | null {
  const values = history.heldOut.map(([, y]) => y).filter((y) => Number.isFinite(y));
  if (values.length === 0) return null;
  return { start: values[0]!, best: Math.min(...values), last: values.at(-1)! };
}

function heldOutText(history: RunHistory): string {
  const s = heldOutSummary(history);
  if (!s) return '—';
  if (history.heldOut.length === 1) return formatLoss(s.start);
  return `${formatLoss(s.start)} → best ${formatLoss(s.best)}, last ${formatLoss(s.last)}`;
}

function changeText(history: RunHistory): string {
  const s = heldOutSummary(history);
  if (!s || history.heldOut.length < 2) return '—';
  const d = s.last - s.start;
  const sign = d > 0 ? '+' : d < 0 ? '−' : '±';
  return `${sign}${formatLoss(Math.abs(d))} (${sign}${Math.abs((100 * d) / s.start).toFixed(1)}%)`;
}

const percent = (y: number) => `${(100 * y).toFixed(1)}%`;

function seriesChange(points: XY | undefined): string {
  if (!points || points.length === 0) return '—';
  const first = points[0]![1];
  const last = points.at(-1)![1];
  return points.length === 1 ? percent(first) : `${percent(first)} → ${percent(last)}`;
}

function progressText(side: RunSide): string {
  const { run } = side;
  if (run.kind === 'federation') return `${formatCount(run.committedRound)} of ${formatCount(run.rounds)} rounds (τ = ${formatCount(run.steps)})`;
  return `${formatCount(run.step)} of ${formatCount(run.steps)} steps`;
}

function bytesText(side: RunSide): string {
  const f = computeFigures(side.run, side.history);
  if (side.history.rounds.length === 0) return side.run.kind === 'local' ? 'none (local run)' : '—';
  return `${formatBytes(f.bytes.rounds)}${f.text.ratio ? ` (${f.text.ratio})` : ''}`;
}

/** "3 min 20 s", from the run's start to its end (or "running"). */
export function durationText(run: RunSummary): string {
  if (run.endedAt === null) return run.state === 'running' || run.state === 'starting' ? 'running' : '—';
  const s = Math.max(0, Math.round((run.endedAt - run.startedAt) / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min${s % 60 ? ` ${s % 60} s` : ''}`;
  return `${Math.floor(min / 60)} h${min % 60 ? ` ${min % 60} min` : ''}`;
}

/** The figures of the run shown and the run compared with it, row by row. */
export function comparisonRows(shown: RunSide, compared: RunSide): FigureRow[] {
  const row = (label: string, f: (s: RunSide) => string): FigureRow => ({ label, shown: f(shown), compared: f(compared) });
  const rows = [
    row('Held-out loss', (s) => heldOutText(s.history)),
    row('Change', (s) => changeText(s.history)),
    row('Top-1 accuracy', (s) => seriesChange(s.history.accuracy)),
    row('Steps / rounds', progressText),
    row('Bytes', bytesText),
    row('Time', (s) => durationText(s.run)),
  ];
  // A row neither run has a figure for says nothing.
  return rows.filter((r) => r.shown !== '—' || r.compared !== '—');
}

const sameSeries = (a: XY | undefined, b: XY | undefined): boolean =>
  (a?.length ?? 0) === (b?.length ?? 0) && (a ?? []).every(([x, y], i) => x === b![i]![0] && y === b![i]![1]);

/**
 * Two runs whose comparison would show the same curves twice: the same run, or runs with the same
 * step and held-out losses, measures and bytes (a deterministic run repeated with the same settings).
 */
export function sameRuns(a: RunSide, b: RunSide): boolean {
  if (a.run.id === b.run.id) return true;
  const ha = a.history;
  const hb = b.history;
  if (ha.stepLoss.length === 0 && ha.heldOut.length === 0) return false;
  return (
    sameSeries(ha.stepLoss, hb.stepLoss) &&
    sameSeries(ha.heldOut, hb.heldOut) &&
    sameSeries(ha.accuracy, hb.accuracy) &&
    sameSeries(ha.generation, hb.generation) &&
    ha.rounds.length === hb.rounds.length &&
    ha.rounds.every((r, i) => r.up + r.down === hb.rounds[i]!.up + hb.rounds[i]!.down)
  );
}

/** The largest y of some series (a chart's highest point), or null without points. */
export function highestPoint(...series: readonly (XY | readonly { y: number }[] | undefined)[]): number | null {
  let hi: number | null = null;
  for (const s of series) {
    for (const p of s ?? []) {
      const y = Array.isArray(p) ? (p as readonly [number, number])[1] : (p as { y: number }).y;
      if (Number.isFinite(y) && (hi === null || y > hi)) hi = y;
    }
  }
  return hi;
}
