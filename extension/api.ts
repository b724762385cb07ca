// What `activate` returns to other extensions (and to the extension-host tests).
import type * as vscode from 'vscode';
import type { RunHistory, ViewStatus } from '../contracts/webview-messages';
import type { WebviewBundle } from './webviewHtml';

export interface FedKSeedApi {
  /** Fires when a webview's script has loaded, passed its CSP and completed the ready handshake. */
  readonly onDidWebviewReady: vscode.Event<WebviewBundle>;
  /** What the sidebar shows now. */
  status(): ViewStatus;
  /** The dashboard's chart series. */
  history(): RunHistory;
  /** Process ids of the supervised trainer and local server, while they run. */
  trainerPid(): number | undefined;
  serverPid(): number | undefined;
}
