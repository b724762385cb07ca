// The study's figures as standalone SVG files, drawn with the simulation report's chart code.
import { formatBytes } from '../../protocol/format';
import { lineChart, type Series } from '../../simulate/svg-chart';
import type { MethodSpec, TaskSpec } from './config';
import type { RunResult } from './run-federation';
import type { MethodSummary } from './summary';

const K_COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];
const UNRESTRICTED_COLOR = '#333333';

function colorOf(method: MethodSpec, ks: readonly number[]): string {
  return method.k === null ? UNRESTRICTED_COLOR : K_COLORS[ks.indexOf(method.k) % K_COLORS.length];
}

export interface StudyChart {
  /** File name, study-<task>-<what>.svg. */
  readonly file: string;
  readonly title: string;
  readonly svg: string;
}

const fmtLoss = (y: number) => y.toFixed(3);

export function studyCharts(
  task: TaskSpec,
  methods: readonly MethodSpec[],
  summaries: ReadonlyMap<string, MethodSummary>,
  runs: readonly RunResult[],
): StudyChart[] {
  const ks = [...new Set(methods.flatMap((m) => (m.k === null ? [] : [m.k])))].sort((a, b) => a - b);
  const measured = methods.filter((m) => summaries.has(m.id));
  // The paper's figures hold the paper's (isotropic) methods; the shapes have a figure of their own.
  const present = measured.filter((m) => m.shape === 'isotropic');
  const shaped = measured.filter((m) => m.kind === 'fedkseed-pro' && measured.some((o) => o.kind === 'fedkseed-pro' && o.k === m.k && o.shape !== m.shape));
  const lossSeries = (m: MethodSpec, band: boolean): Series => {
    const s = summaries.get(m.id) as MethodSummary;
    return {
      name: m.label,
      color: colorOf(m, ks),
      dashed: m.kind === 'fedkseed-pro',
      markers: false,
      points: s.lossByRound.map((x, r) => [r, x.mean]),
      ...(band && s.repeats > 1 ? { band: s.lossByRound.map((x, r) => [r, x.min, x.max] as const) } : {}),
    };
  };
  const charts: StudyChart[] = [];
  const sweep = present.filter((m) => m.kind !== 'fedkseed-pro');
  charts.push({
    file: `study-${task.id}-loss-vs-round.svg`,
    title: 'held-out loss vs round, FedKSeed at each K and unrestricted ZO',
    svg: lineChart(
      sweep.map((m) => lossSeries(m, true)),
      {
        title: `${task.id}: held-out loss per round (mean, band = min–max over repeats)`,
        xLabel: 'round (0 = base model)',
        yLabel: 'held-out loss (nats/token)',
        formatY: fmtLoss,
        standalone: true,
      },
    ),
  });
  const seeded = present.filter((m) => m.kind !== 'unrestricted');
  charts.push({
    file: `study-${task.id}-pro-vs-uniform.svg`,
    title: 'held-out loss vs round, FedKSeed (solid) and FedKSeed-Pro (dashed) at each K',
    svg: lineChart(
      seeded.map((m) => lossSeries(m, false)),
      {
        title: `${task.id}: uniform (solid) vs Pro (dashed) sampling, mean over repeats`,
        xLabel: 'round (0 = base model)',
        yLabel: 'held-out loss (nats/token)',
        formatY: fmtLoss,
        standalone: true,
      },
    ),
  });
  charts.push({
    file: `study-${task.id}-loss-vs-bytes.svg`,
    title: 'held-out loss vs cumulative bytes of all clients',
    svg: lineChart(
      present.map((m) => {
        const s = summaries.get(m.id) as MethodSummary;
        return {
          name: m.label,
          color: colorOf(m, ks),
          dashed: m.kind === 'fedkseed-pro',
          markers: false,
          points: s.lossByRound.slice(1).map((x, i) => [s.cumulativeBytesByRound[i + 1].mean, x.mean]),
        };
      }),
      {
        title: `${task.id}: held-out loss vs bytes on the wire, all clients (log scale)`,
        xLabel: 'cumulative bytes, up + down',
        yLabel: 'held-out loss (nats/token)',
        logX: true,
        formatX: formatBytes,
        formatY: fmtLoss,
        standalone: true,
      },
    ),
  });
  // Pro's final seed distribution: p_j·K sorted, against the seed's rank as a fraction of K, averaged
  // over repeats; uniform is the flat line at 1, softmax of min–max-normalised importance caps it at e.
  const proSeries: Series[] = present
    .filter((m) => m.kind === 'fedkseed-pro')
    .flatMap((m) => {
      const ps = runs
        .filter((r) => r.method === m.id && r.finalProbabilities !== null)
        .map((r) => [...(r.finalProbabilities as number[])].sort((a, b) => b - a));
      if (ps.length === 0) return [];
      const k = ps[0].length;
      const stride = Math.max(1, Math.floor(k / 256));
      const points: [number, number][] = [];
      for (let j = 0; j < k; j += stride) points.push([(j + 0.5) / k, (ps.reduce((s, p) => s + p[j], 0) / ps.length) * k]);
      return [{ name: `Pro K=${k}`, color: colorOf(m, ks), points, markers: false }];
    });
  if (proSeries.length > 0) {
    charts.push({
      file: `study-${task.id}-pro-probabilities.svg`,
      title: 'FedKSeed-Pro: final seed probabilities, sorted',
      svg: lineChart(proSeries, {
        title: `${task.id}: Pro's final seed probabilities p·K, sorted (1 = uniform)`,
        xLabel: 'seed rank / K',
        yLabel: 'p × K',
        formatX: (x) => x.toFixed(1),
        formatY: (y) => y.toFixed(2),
        standalone: true,
      }),
    });
  }
  if (shaped.length > 0) {
    charts.push({
      file: `study-${task.id}-shape.svg`,
      title: "held-out loss vs round, FedKSeed-Pro with the paper's isotropic z (solid) and tensor-rms (dashed) at each K",
      svg: lineChart(
        shaped.map((m) => ({ ...lossSeries(m, false), dashed: m.shape !== 'isotropic' })),
        {
          title: `${task.id}: isotropic (solid) vs tensor-rms (dashed) perturbations, Pro, mean over repeats`,
          xLabel: 'round (0 = base model)',
          yLabel: 'held-out loss (nats/token)',
          formatY: fmtLoss,
          standalone: true,
        },
      ),
    });
  }
  return charts;
}
