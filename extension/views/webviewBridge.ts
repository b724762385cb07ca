// Connects one webview to the extension: validates every message it sends, answers `ready` with
// the current status, forwards status changes, and runs the few commands a webview may ask for.
import * as vscode from 'vscode';
import { parseWebviewToHost, type HostToWebview } from '../../webview/shared/messages';
import type { TrainingStatusStore } from '../state/trainingStatusStore';
import type { WebviewBundle } from '../webviewHtml';

export interface WebviewBridgeDeps {
  store: TrainingStatusStore;
  log: vscode.LogOutputChannel;
  /** Called each time a webview's script has loaded and announced itself. */
  onReady: (kind: WebviewBundle) => void;
}

export function bridgeWebview(webview: vscode.Webview, kind: WebviewBundle, deps: WebviewBridgeDeps): vscode.Disposable {
  const post = (message: HostToWebview): void => {
    void webview.postMessage(message);
  };
  return vscode.Disposable.from(
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
          deps.onReady(kind);
          break;
        case 'runCommand':
          void vscode.commands.executeCommand(message.command);
          break;
      }
    }),
    deps.store.onDidChange((status) => post({ type: 'status', status })),
  );
}
