// The dashboard webview panel: at most one, revealed when asked again, restored after a reload
// through a WebviewPanelSerializer (its webview state is kept with getState/setState).
import * as vscode from 'vscode';
import { DASHBOARD_VIEW_TYPE } from '../ids';
import { parseWebviewState } from '../../contracts/webview-messages';
import { renderWebviewHtml, webviewOptions } from '../webviewHtml';
import { bridgeWebview, type WebviewBridgeDeps } from './webviewBridge';

export class DashboardPanelManager implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private panelSubscriptions: vscode.Disposable | undefined;
  private readonly serializer: vscode.Disposable;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly deps: WebviewBridgeDeps,
  ) {
    this.serializer = vscode.window.registerWebviewPanelSerializer(DASHBOARD_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel: vscode.WebviewPanel, state: unknown) => {
        // The webview restores its own view from the same state; the host only checks it is ours.
        const restored = parseWebviewState(state);
        if (!restored.ok && state != null) this.deps.log.warn(`Dashboard state was not restored: ${restored.error}`);
        this.adopt(panel);
      },
    });
  }

  /** Opens the dashboard, or brings the open one to the front. */
  show(): void {
    if (this.panel) {
      this.panel.reveal(undefined, false);
      return;
    }
    const panel = vscode.window.createWebviewPanel(DASHBOARD_VIEW_TYPE, 'FedKSeed Dashboard', vscode.ViewColumn.Active, {
      ...webviewOptions(this.extensionUri),
      // Charts keep their history in the page; hiding the tab must not throw it away.
      retainContextWhenHidden: true,
    });
    this.adopt(panel);
  }

  private adopt(panel: vscode.WebviewPanel): void {
    this.panel?.dispose();
    this.panel = panel;
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'fedkseed.svg');
    panel.webview.options = webviewOptions(this.extensionUri);
    panel.webview.html = renderWebviewHtml(panel.webview, this.extensionUri, 'dashboard', 'FedKSeed Dashboard');
    const bridge = bridgeWebview(panel.webview, 'dashboard', this.deps);
    const onDispose = panel.onDidDispose(() => {
      if (this.panel === panel) {
        this.panel = undefined;
        this.panelSubscriptions = undefined;
      }
      bridge.dispose();
      onDispose.dispose();
    });
    this.panelSubscriptions = vscode.Disposable.from(bridge, onDispose);
  }

  dispose(): void {
    this.serializer.dispose();
    this.panelSubscriptions?.dispose();
    this.panel?.dispose();
    this.panel = undefined;
  }
}
