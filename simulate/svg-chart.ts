// Inline SVG line charts, shared by the simulation report (embedded in report.html, styled by its CSS)
// and the study (standalone .svg files that carry their own style).

export interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  readonly dashed?: boolean;
  /** A shaded spread around the line (e.g. min–max over repeats): [x, low, high]. */
  readonly band?: readonly (readonly [number, number, number])[];
  /** Draw a dot at every point (default true). */
  readonly markers?: boolean;
}

export interface ChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly logY?: boolean;
  readonly logX?: boolean;
  readonly formatY?: (y: number) => string;
  readonly formatX?: (x: number) => string;
  /** Embed a style sheet and an XML namespace so the SVG renders on its own (a .svg file). */
  readonly standalone?: boolean;
  readonly width?: number;
  readonly height?: number;
}

/** What report.html's CSS gives embedded charts; standalone charts embed it. */
export const CHART_STYLE =
  '.grid{stroke:#eee}.axis{stroke:#888}.tick,.legend{font:11px system-ui,sans-serif;fill:#444}.label{font:12px system-ui,sans-serif;fill:#333}.title{font:600 13px system-ui,sans-serif;fill:#222}';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** About five round-numbered ticks covering [lo, hi]. */
function linearTicks(lo: number, hi: number): number[] {
  if (hi - lo < 1e-12) return [lo];
  const raw = (hi - lo) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

const LEGEND_ENTRY_WIDTH = 180;
const LEGEND_ROW_HEIGHT = 16;

export function lineChart(series: readonly Series[], o: ChartOptions): string {
  const W = o.width ?? 640;
  const H0 = o.height ?? 300;
  const perRow = Math.max(1, Math.floor((W - 72) / LEGEND_ENTRY_WIDTH));
  const legendRows = Math.max(1, Math.ceil(series.length / perRow));
  // Extra legend rows grow the chart upwards rather than squeezing the plot.
  const extra = (legendRows - 1) * LEGEND_ROW_HEIGHT;
  const H = H0 + extra;
  const m = { left: 72, right: o.logX ? 32 : 16, top: 52 + extra, bottom: 44 };
  const finiteX = (x: number) => Number.isFinite(x) && (!o.logX || x > 0);
  const finiteY = (y: number) => Number.isFinite(y) && (!o.logY || y > 0);
  const all = series
    .flatMap((s) => [...s.points, ...(s.band ?? []).flatMap(([x, lo, hi]) => [[x, lo] as const, [x, hi] as const])])
    .filter(([x, y]) => finiteX(x) && finiteY(y));
  if (all.length === 0) return `<p class="empty">${escapeHtml(o.title)}: no data yet</p>`;
  const tx = (x: number) => (o.logX ? Math.log10(x) : x);
  const ty = (y: number) => (o.logY ? Math.log10(y) : y);
  // Rounds and other whole-number axes get whole-number ticks only.
  const integerX = all.every(([x]) => Number.isInteger(x));
  const xs = all.map(([x]) => tx(x));
  const ys = all.map(([, y]) => ty(y));
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs, x0 + (o.logX ? 0 : 1));
  if (o.logX) {
    x0 = Math.floor(x0);
    x1 = Math.max(Math.ceil(x1 + 1e-9), x0 + 1);
  }
  let y0 = Math.min(...ys);
  let y1 = Math.max(...ys);
  if (o.logY) {
    y0 = Math.floor(y0);
    y1 = Math.ceil(y1 + 1e-9);
  } else {
    const pad = (y1 - y0) * 0.08 || Math.abs(y0) * 0.01 || 1;
    y0 -= pad;
    y1 += pad;
  }
  if (y1 - y0 < 1e-12) y1 = y0 + 1;
  const px = (x: number) => m.left + ((tx(x) - x0) / (x1 - x0)) * (W - m.left - m.right);
  const py = (y: number) => H - m.bottom - ((ty(y) - y0) / (y1 - y0)) * (H - m.top - m.bottom);
  const fmtY = o.formatY ?? ((y: number) => String(Number(y.toPrecision(4))));
  const fmtX = o.formatX ?? ((x: number) => String(x));
  const yTicks = o.logY ? Array.from({ length: y1 - y0 + 1 }, (_, i) => 10 ** (y0 + i)) : linearTicks(y0, y1);
  const xTicks = o.logX ? Array.from({ length: x1 - x0 + 1 }, (_, i) => 10 ** (x0 + i)) : linearTicks(x0, x1).filter((t) => !integerX || Number.isInteger(t));
  const parts: string[] = [];
  parts.push(`<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(o.title)}" xmlns="http://www.w3.org/2000/svg">`);
  if (o.standalone) parts.push(`<style>${CHART_STYLE}</style><rect width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(`<text x="${W / 2}" y="18" text-anchor="middle" class="title">${escapeHtml(o.title)}</text>`);
  for (const t of yTicks) {
    const y = py(t).toFixed(1);
    parts.push(
      `<line x1="${m.left}" x2="${W - m.right}" y1="${y}" y2="${y}" class="grid"/><text x="${m.left - 6}" y="${y}" dy="4" text-anchor="end" class="tick">${escapeHtml(fmtY(t))}</text>`,
    );
  }
  for (const t of xTicks) {
    const x = px(t).toFixed(1);
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${H - m.bottom}" y2="${H - m.bottom + 4}" class="axis"/><text x="${x}" y="${H - m.bottom + 16}" text-anchor="middle" class="tick">${escapeHtml(fmtX(t))}</text>`,
    );
  }
  parts.push(
    `<line x1="${m.left}" x2="${W - m.right}" y1="${H - m.bottom}" y2="${H - m.bottom}" class="axis"/><line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${H - m.bottom}" class="axis"/>`,
  );
  parts.push(`<text x="${(m.left + W - m.right) / 2}" y="${H - 6}" text-anchor="middle" class="label">${escapeHtml(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${(m.top + H - m.bottom) / 2}) rotate(-90)" text-anchor="middle" class="label">${escapeHtml(o.yLabel)}</text>`);
  for (const s of series) {
    const band = (s.band ?? []).filter(([x, lo, hi]) => finiteX(x) && finiteY(lo) && finiteY(hi));
    if (band.length > 1) {
      const upper = band.map(([x, , hi]) => `${px(x).toFixed(1)},${py(hi).toFixed(1)}`);
      const lower = [...band].reverse().map(([x, lo]) => `${px(x).toFixed(1)},${py(lo).toFixed(1)}`);
      parts.push(`<polygon points="${[...upper, ...lower].join(' ')}" fill="${s.color}" fill-opacity="0.12" stroke="none"/>`);
    }
  }
  series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => finiteX(x) && finiteY(y));
    const d = pts.map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    if (s.markers !== false) {
      for (const [x, y] of pts)
        parts.push(
          `<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${s.color}"><title>${escapeHtml(`${s.name}, ${o.xLabel} ${fmtX(x)}: ${fmtY(y)}`)}</title></circle>`,
        );
    }
    // Legend in the top margin, in rows, so it never covers the data.
    const lx = m.left + (i % perRow) * LEGEND_ENTRY_WIDTH;
    const ly = 34 + Math.floor(i / perRow) * LEGEND_ROW_HEIGHT;
    parts.push(
      `<line x1="${lx}" x2="${lx + 20}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/><text x="${lx + 26}" y="${ly}" dy="4" class="legend">${escapeHtml(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}
