// The status bar item: round (or step), loss and bytes this round; a click opens the dashboard.
import * as vscode from 'vscode';
import { formatBytes, formatLoss } from '../protocol/format';
import { CommandIds } from './ids';
import type { RunStore } from './state/runStore';
import type { ViewStatus } from '../contracts/webview-messages';

export function statusBarText({ trainer }: ViewStatus): string {
  const spin = trainer.state === 'training' || trainer.state === 'connecting' || trainer.state === 'loading' ? '$(sync~spin)' : '$(pulse)';
  if (trainer.mode === 'none' || trainer.state === 'idle') return '$(pulse) FedKSeed';
  const progress = trainer.mode === 'federation' ? `round ${trainer.round}/${trainer.rounds}` : `step ${trainer.step}/${trainer.steps}`;
  const loss = trainer.loss !== null ? ` · loss ${formatLoss(trainer.loss)}` : '';
  const bytes = trainer.mode === 'federation' ? ` · ${formatBytes(trainer.bytes.upRound + trainer.bytes.downRound)}/round` : '';
  return `${spin} ${progress}${loss}${bytes}`;
}

export function createStatusBar(store: RunStore): vscode.Disposable {
  const item = vscode.window.createStatusBarItem('fedkseed.status', vscode.StatusBarAlignment.Left, 10);
  item.name = 'FedKSeed';
  item.command = CommandIds.showDashboard;
  const render = (status: ViewStatus) => {
    item.text = statusBarText(status);
    item.tooltip = `FedKSeed: ${status.trainer.detail ?? status.trainer.state}${status.trainer.provider ? ` (${status.trainer.provider})` : ''}\nClick to open the dashboard`;
  };
  render(store.status);
  item.show();
  return vscode.Disposable.from(item, store.onDidChangeStatus(render));
}
