// Extension entry point: builds the services once and registers every view, command and
// serializer as a Disposable of the extension context.
import * as vscode from 'vscode';
import type { FedKSeedApi } from './api';
import { registerCommands } from './commands/registerCommands';
import { TrainingStatusStore } from './state/trainingStatusStore';
import { DashboardPanelManager } from './views/dashboardPanel';
import { registerTrainingView } from './views/trainingViewProvider';
import type { WebviewBundle } from './webviewHtml';

export function activate(context: vscode.ExtensionContext): FedKSeedApi {
  const log = vscode.window.createOutputChannel('FedKSeed', { log: true });
  const store = new TrainingStatusStore();
  const webviewReady = new vscode.EventEmitter<WebviewBundle>();
  const bridgeDeps = {
    store,
    log,
    onReady: (kind: WebviewBundle) => {
      log.debug(`${kind} webview ready`);
      webviewReady.fire(kind);
    },
  };
  const dashboard = new DashboardPanelManager(context.extensionUri, bridgeDeps);

  context.subscriptions.push(
    log,
    store,
    webviewReady,
    dashboard,
    registerTrainingView(context.extensionUri, bridgeDeps),
    ...registerCommands({ dashboard }),
  );
  log.info(`FedKSeed ${String(context.extension.packageJSON.version)} activated in VS Code ${vscode.version}`);
  return { onDidWebviewReady: webviewReady.event };
}

export function deactivate(): void {
  // Everything is released through context.subscriptions.
}
