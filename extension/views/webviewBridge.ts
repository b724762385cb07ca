// Connects one webview to the extension: validates every message it sends, answers `ready` with the
// current status (and the run list, and for the dashboard its view), forwards changes (the dashboard's
// view at most a few times a second), and runs the few commands and run actions a webview may ask for.
import * as vscode from 'vscode';
import { parseWebviewToHost, type HostToWebview, type RunAction } from '../../contracts/webview-messages';
import type { RunStore } from '../state/runStore';
import type { WebviewBundle } from '../webviewHtml';
import { affectsSetup, setupView } from './setup';

export interface WebviewBridgeDeps {
  store: RunStore;
  log: vscode.LogOutputChannel;
  /** Called each time a webview's script has loaded and announced itself. */
  onReady: (kind: WebviewBundle) => void;
}

const DASHBOARD_INTERVAL_MS = 250;

/** The command behind a run action of a webview (each asks nothing more of the user than the command does). */
function runActionCommand(action: RunAction, runId: string | undefined, store: RunStore): [string, ...unknown[]] | undefined {
  switch (action) {
    case 'open':
      return runId ? ['fedkseed.openRun', runId] : undefined;
    case 'compare': {
      const shown = store.dashboard.run?.id;
      return runId ? ['fedkseed.compareRuns', shown && shown !== runId ? [shown, runId] : [runId]] : undefined;
    }
    case 'remove':
      return runId ? ['fedkseed.removeRun', { runId, confirm: true }] : undefined;
    case 'loadWeights':
      return runId ? ['fedkseed.loadRunWeights', runId] : undefined;
    case 'showLive':
      return ['fedkseed.openRun', null];
    case 'stopComparing':
      return ['fedkseed.compareRuns', null];
  }
}

export function bridgeWebview(webview: vscode.Webview, kind: WebviewBundle, deps: WebviewBridgeDeps): vscode.Disposable {
  const post = (message: HostToWebview): void => {
    void webview.postMessage(message);
  };
  let dashboardTimer: NodeJS.Timeout | undefined;
  const postDashboardSoon = (): void => {
    dashboardTimer ??= setTimeout(() => {
      dashboardTimer = undefined;
      post({ type: 'dashboard', view: deps.store.dashboard });
    }, DASHBOARD_INTERVAL_MS);
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
          post({ type: 'runs', list: deps.store.runs });
          if (kind === 'sidebar') post({ type: 'setup', setup: setupView() });
          if (kind === 'dashboard') post({ type: 'dashboard', view: deps.store.dashboard });
          deps.onReady(kind);
          break;
        case 'runCommand':
          void vscode.commands.executeCommand(message.command);
          break;
        case 'runAction': {
          const command = runActionCommand(message.action, message.runId, deps.store);
          if (command) void vscode.commands.executeCommand(...command);
          break;
        }
      }
    }),
    deps.store.onDidChangeStatus((status) => post({ type: 'status', status })),
    deps.store.onDidChangeRuns((list) => post({ type: 'runs', list })),
  ];
  // Only the dashboard draws the charts; only the sidebar says what Start will use.
  if (kind === 'dashboard') subscriptions.push(deps.store.onDidChangeDashboard(postDashboardSoon));
  if (kind === 'sidebar') {
    const postSetup = () => post({ type: 'setup', setup: setupView() });
    subscriptions.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (affectsSetup(e)) postSetup();
      }),
      vscode.workspace.onDidChangeWorkspaceFolders(postSetup),
    );
  }
  return vscode.Disposable.from(...subscriptions, { dispose: () => clearTimeout(dashboardTimer) });
}
