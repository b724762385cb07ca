// Number formatting shared by the webviews and the status bar.
export { formatBytes } from '../../protocol/format';

export function formatLoss(loss: number | null): string {
  return loss === null || !Number.isFinite(loss) ? '—' : loss.toFixed(4);
}
