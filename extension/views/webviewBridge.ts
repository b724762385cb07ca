// Connects one webview to the extension: validates every message it sends, answers `ready` with the
// current status and chart history, forwards changes (history at most a few times a second), and
// runs the few commands a webview may ask for.
import * as vscode from 'vscode';
import { parseWebviewToHost, type HostToWebview } from '../../contracts/webview-messages';
import type { RunStore } from '../state/runStore';
import type { WebviewBundle } from '../webviewHtml';

export interface WebviewBridgeDeps {
  store: RunStore;
  log: vscode.LogOutputChannel;
  /** Called each time a webview's script has loaded and announced itself. */
  onReady: (kind: WebviewBundle) => void;
}

const HISTORY_INTERVAL_MS = 250;

export function bridgeWebview(webview: vscode.Webview, kind: WebviewBundle, deps: WebviewBridgeDeps): vscode.Disposable {
  const post = (message: HostToWebview): void => {
    void webview.postMessage(message);
  };
  let historyTimer: NodeJS.Timeout | undefined;
  const postHistorySoon = (): void => {
    historyTimer ??= setTimeout(() => {
      historyTimer = undefined;
      post({ type: 'history', history: deps.store.history });
    }, HISTORY_INTERVAL_MS);
  };
  const subscriptions = [
    webview.onDidReceiveMessage((raw: unknown) => {
      const parsed = parseWebviewToHost(raw);
      if (!parsed.ok) {
        deps.log.warn(`Ignored an invalid message from the ${kind} webview: ${parsed.error}`);
        return;
      }
      const message = parsed.value;
      switch (message.type) {
        case 'ready':
          post({ type: 'status', status: deps.store.status });
          if (kind === 'dashboard') post({ type: 'history', history: deps.store.history });
          deps.onReady(kind);
          break;
        case 'runCommand':
          void vscode.commands.executeCommand(message.command);
          break;
      }
    }),
    deps.store.onDidChangeStatus((status) => post({ type: 'status', status })),
  ];
  // Only the dashboard draws the history.
  if (kind === 'dashboard') subscriptions.push(deps.store.onDidChangeHistory(postHistorySoon));
  return vscode.Disposable.from(...subscriptions, { dispose: () => clearTimeout(historyTimer) });
}
