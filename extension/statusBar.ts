// The status bar item: the run's progress (n/N with a time estimate, or the round), its loss and the
// last round's bytes — the figures the sidebar and the dashboard show; a click opens the dashboard.
import * as vscode from 'vscode';
import { formatLoss } from '../protocol/format';
import { CommandIds } from './ids';
import type { RunStore } from './state/runStore';
import type { ViewStatus } from '../contracts/webview-messages';

export function statusBarText({ trainer, figures }: ViewStatus): string {
  if (trainer.mode === 'none' || trainer.state === 'idle') return '$(pulse) FedKSeed';
  const busy = ['training', 'connecting', 'loading', 'connected', 'reconnecting', 'stopping'].includes(trainer.state);
  const spin = busy ? '$(sync~spin)' : '$(pulse)';
  const stopping = trainer.state === 'stopping' ? ' · stopping…' : '';
  const loss = trainer.loss !== null ? ` · loss ${formatLoss(trainer.loss)}` : '';
  const bytes = trainer.mode === 'federation' && figures.bytes.lastRound !== null ? ` · ${figures.text.lastRound} last round` : '';
  return `${spin} ${figures.text.progress}${stopping}${loss}${bytes}`;
}

function tooltip({ trainer, figures, model, weightsText }: ViewStatus): string {
  const lines = [`FedKSeed: ${trainer.detail ?? trainer.state}${trainer.provider ? ` (${trainer.provider})` : ''}`];
  if (model) lines.push(`Model: ${model}`);
  if (figures.text.ratio) lines.push(`${figures.text.total}, ${figures.text.ratio}`);
  if (weightsText) lines.push(`Weights: ${weightsText}`);
  lines.push('Click to open the dashboard');
  return lines.join('\n');
}

export function createStatusBar(store: RunStore): vscode.Disposable {
  const item = vscode.window.createStatusBarItem('fedkseed.status', vscode.StatusBarAlignment.Left, 10);
  item.name = 'FedKSeed';
  item.command = CommandIds.showDashboard;
  const render = (status: ViewStatus) => {
    item.text = statusBarText(status);
    item.tooltip = tooltip(status);
  };
  render(store.status);
  item.show();
  return vscode.Disposable.from(item, store.onDidChangeStatus(render));
}
