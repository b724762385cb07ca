// The sidebar "Training" webview view in the FedKSeed activity-bar container.
import * as vscode from 'vscode';
import { TRAINING_VIEW_ID } from '../ids';
import { renderWebviewHtml, webviewOptions } from '../webviewHtml';
import { bridgeWebview, type WebviewBridgeDeps } from './webviewBridge';

class TrainingViewProvider implements vscode.WebviewViewProvider {
  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly deps: WebviewBridgeDeps,
  ) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    view.webview.options = webviewOptions(this.extensionUri);
    view.webview.html = renderWebviewHtml(view.webview, this.extensionUri, 'sidebar', 'FedKSeed Training');
    const bridge = bridgeWebview(view.webview, 'sidebar', this.deps);
    view.onDidDispose(() => bridge.dispose());
  }
}

export function registerTrainingView(extensionUri: vscode.Uri, deps: WebviewBridgeDeps): vscode.Disposable {
  return vscode.window.registerWebviewViewProvider(TRAINING_VIEW_ID, new TrainingViewProvider(extensionUri, deps));
}
