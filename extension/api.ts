// What `activate` returns to other extensions (and to the extension-host tests).
import type * as vscode from 'vscode';
import type { ServerProgress } from '../contracts/server-process';
import type { DashboardView, RunHistory, RunSummary, SetupView, ViewStatus } from '../contracts/webview-messages';
import type { WebviewBundle } from './webviewHtml';
import type { ShownSuggestion } from './completions/provider';

export interface FedKSeedApi {
  /** Fires when a webview's script has loaded, passed its CSP and completed the ready handshake. */
  readonly onDidWebviewReady: vscode.Event<WebviewBundle>;
  /** Fires with every change of what the sidebar shows. */
  readonly onDidChangeStatus: vscode.Event<ViewStatus>;
  /** What the sidebar shows now. */
  status(): ViewStatus;
  /** What Start will use (model and data), as the sidebar names them. */
  setup(): SetupView;
  /** The chart series of the current run (or the latest one). */
  history(): RunHistory;
  /** What the dashboard shows: a run, its figures, and the run it is compared with. */
  dashboardView(): DashboardView;
  /** Every run, newest first. */
  runs(): RunSummary[];
  /** A run's folder (record and checkpoint). */
  runFolder(id: string): string;
  /** The status bar item's text. */
  statusBarText(): string;
  /** The last information or warning message shown. */
  lastMessage(): string | undefined;
  /** The local federation server's events, oldest first. */
  serverEvents(): readonly ServerProgress[];
  /** Process ids of the supervised trainer and local server, while they run. */
  trainerPid(): number | undefined;
  serverPid(): number | undefined;
  /** The inline completion provider (the extension-host tests call it directly). */
  readonly completionProvider: vscode.InlineCompletionItemProvider;
  /** The suggestion last handed to the editor, with its source. */
  lastSuggestion(): ShownSuggestion | undefined;
}
