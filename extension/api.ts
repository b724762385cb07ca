// What `activate` returns to other extensions (and to the extension-host tests).
import type * as vscode from 'vscode';
import type { WebviewBundle } from './webviewHtml';

export interface FedKSeedApi {
  /** Fires when a webview's script has loaded, passed its CSP and completed the ready handshake. */
  readonly onDidWebviewReady: vscode.Event<WebviewBundle>;
}
