// report.html: one file, no scripts, no network (a CSP forbids both); charts are inline SVG drawn here.
import { formatBytes, formatRatio } from '../protocol/format';
import type { SimulationReport } from './report';
import { escapeHtml, lineChart } from './svg-chart';
import { renderTextSamples, TEXT_SAMPLES_CSS } from './text-samples-html';

export { escapeHtml };

const fmtLoss = (x: number | null): string => (x === null ? '—' : x.toFixed(4));

/** The groups no client trained on, if --groups-per-client left any out. */
const unassigned = (r: SimulationReport): string => {
  const u = r.config.data.unassigned;
  return u.groups.length === 0 ? '' : `; ${u.groups.length} dealt to no client (${u.groups.join(', ')}: ${u.examples} windows)`;
};

export function renderReportHtml(r: SimulationReport): string {
  const f = r.config.federation;
  const rounds = r.rounds;
  const committed = rounds.filter((x) => x.round > 0);
  const lossChart = lineChart(
    [{ name: 'held-out loss', color: '#1f77b4', points: rounds.filter((x) => x.heldOutLoss !== null).map((x) => [x.round, x.heldOutLoss as number]) }],
    {
      title: 'Held-out loss of the global model',
      xLabel: 'round (0 = base model)',
      yLabel: 'loss (nats/token)',
      formatY: (y) => y.toFixed(3),
    },
  );
  const perClient = (x: (typeof committed)[number]) => (x.bytes.up + x.bytes.down) / Math.max(1, x.participants.length);
  const bytesChart = lineChart(
    [
      { name: 'FedKSeed, per client', color: '#2ca02c', points: committed.map((x) => [x.round, perClient(x)]) },
      {
        name: 'FedAvg, per client',
        color: '#d62728',
        dashed: true,
        points: committed.map((x) => [x.round, x.bytes.fedAvg / Math.max(1, x.participants.length)]),
      },
    ],
    { title: 'Bytes on the wire per client per round (log scale)', xLabel: 'round', yLabel: 'bytes (up + down)', logY: true, formatY: formatBytes },
  );
  const first = rounds[0]?.heldOutLoss ?? null;
  const last = rounds.length > 1 ? rounds[rounds.length - 1].heldOutLoss : null;
  const summary = [
    ['status', r.status + (r.error ? `: ${r.error}` : '')],
    [
      'held-out loss',
      `${fmtLoss(first)} → ${fmtLoss(last)}${first !== null && last !== null ? ` (${last - first >= 0 ? '+' : ''}${(last - first).toFixed(4)})` : ''}`,
    ],
    ['rounds committed', `${r.totals.committedRounds} of ${f.rounds}`],
    [
      'bytes, all clients',
      `${formatBytes(r.totals.bytes)} (FedAvg: ${formatBytes(r.totals.fedAvgBytes)}, ${r.totals.bytes > 0 ? formatRatio(r.totals.fedAvgBytes / r.totals.bytes) : '—'} more)`,
    ],
    ['replicas identical', r.totals.replicasIdentical === null ? '—' : r.totals.replicasIdentical ? 'yes, in every round' : 'NO'],
    ['time', `${r.seconds.toFixed(1)} s`],
  ];
  const config = [
    ['model', `${r.config.model.path} (${r.config.model.parameters.toLocaleString('en-US')} parameters, ${r.config.model.identity.slice(0, 12)}…)`],
    [
      'data',
      `${r.config.data.path}: ${r.config.data.train} training / ${r.config.data.heldOut} held-out windows (${r.config.data.evalExamples} evaluated), ${r.config.data.groups} groups${unassigned(r)}`,
    ],
    ['clients', `${r.config.clients}, ${f.clientsPerRound} per round, split ${r.config.split}${r.config.alpha !== null ? ` (α = ${r.config.alpha})` : ''}`],
    [
      'algorithm',
      `FedKSeed${f.sampling === 'pro' ? '-Pro' : ''}: K = ${f.k}, τ = ${f.tau}, ε = ${f.epsilon}, η = ${f.eta}, shape ${f.shape ?? 'isotropic'}, batch ${f.batchSize}, seq ${r.config.seqLen}, weighting ${f.weighting}, seed ${f.federationSeed}`,
    ],
    ['checkpoint', r.checkpoint ?? '—'],
  ];
  const table = (rows: string[][]) =>
    `<table class="kv">${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>`;
  const roundRows = rounds
    .map(
      (x) =>
        `<tr><td>${x.round}</td><td>${fmtLoss(x.heldOutLoss)}</td><td>${x.participants.length}</td><td>${fmtLoss(x.clientLossBefore)} → ${fmtLoss(x.clientLossAfter)}</td>` +
        `<td>${x.round > 0 ? formatBytes(x.bytes.up) : '—'}</td><td>${x.round > 0 ? formatBytes(x.bytes.down) : '—'}</td><td>${formatBytes(x.cumulativeBytes)}</td><td>${formatBytes(x.cumulativeFedAvgBytes)}</td>` +
        `<td><code>${escapeHtml(x.digest.slice(0, 12))}</code> ${x.digestsAgree === null ? '' : x.digestsAgree ? '✓' : '✗'}</td><td>${x.round > 0 ? x.seconds.toFixed(1) : '—'}</td></tr>`,
    )
    .join('');
  const clientRows = r.clients
    .map(
      (c) =>
        `<tr><td>${escapeHtml(c.id)}</td><td>${c.examples}</td><td>${escapeHtml(c.groups.join(', '))}</td><td>${c.bytes ? `${formatBytes(c.bytes.frameUp)} / ${formatBytes(c.bytes.frameDown)}` : '—'}</td><td>${c.exitCode ?? '—'}</td><td>${escapeHtml(c.error ?? '')}</td></tr>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>FedKSeed simulation · ${escapeHtml(r.startedAt)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222;padding:0 16px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top}
table.kv th{color:#555;font-weight:600;white-space:nowrap}
.charts{display:flex;flex-wrap:wrap;gap:16px}
svg{background:#fff;border:1px solid #ddd}
svg .grid{stroke:#eee}svg .axis{stroke:#888}svg .tick,svg .legend{font-size:11px;fill:#444}svg .label{font-size:12px;fill:#333}svg .title{font-size:13px;font-weight:600;fill:#222}
code{font-size:12px}.empty{color:#777}
${TEXT_SAMPLES_CSS}
</style></head><body>
<h1>FedKSeed simulation</h1>
<p>${escapeHtml(r.startedAt)} → ${escapeHtml(r.finishedAt)}</p>
${table(summary)}
<div class="charts">${lossChart}${bytesChart}</div>
${renderTextSamples(r.textSamples)}
<h2>Rounds</h2>
<table><tr><th>round</th><th>held-out loss</th><th>clients</th><th>clients' local loss</th><th>up, all clients</th><th>down, all clients</th><th>total bytes</th><th>FedAvg total</th><th>replica</th><th>s</th></tr>${roundRows}</table>
<h2>Clients</h2>
<table><tr><th>client</th><th>examples</th><th>groups</th><th>frames up / down</th><th>exit</th><th>error</th></tr>${clientRows}</table>
<h2>Configuration</h2>
${table(config)}
</body></html>
`;
}
