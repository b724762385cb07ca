// How the protocol's byte counts, savings and losses are shown to people: one format for the CLI, the
// simulation report, the status bar and the webviews.

/** 1,234 B · 12.3 KB · 4.56 MB · 7.89 GB (powers of 1000, as network traffic is counted). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let u = 0;
  let v = bytes;
  while (Math.abs(v) >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${Math.round(v).toLocaleString('en-US')} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`;
}

/** A loss with four decimals; — when there is none (null or not finite). */
export function formatLoss(loss: number | null): string {
  return loss === null || !Number.isFinite(loss) ? '—' : loss.toFixed(4);
}

/** 3.2×10⁴ style for large ratios, plain digits for small ones. */
export function formatRatio(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x < 1000) return `${x.toFixed(x < 10 ? 1 : 0)}×`;
  const e = Math.floor(Math.log10(x));
  const sup = String(e).replace(/\d/g, (d) => '⁰¹²³⁴⁵⁶⁷⁸⁹'[Number(d)]);
  return `${(x / 10 ** e).toFixed(1)}·10${sup}×`;
}
