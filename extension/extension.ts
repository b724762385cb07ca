// Extension entry point: builds the services once and registers every view, command, status bar item
// and serializer as a Disposable of the extension context (so deactivation stops the trainer and the
// local server processes).
import * as vscode from 'vscode';
import type { FedKSeedApi } from './api';
import { registerCommands } from './commands/registerCommands';
import { affectsEngine } from './config';
import { RunStore } from './state/runStore';
import { createStatusBar } from './statusBar';
import { TrainingController } from './processes/trainingController';
import { DashboardPanelManager } from './views/dashboardPanel';
import { registerTrainingView } from './views/trainingViewProvider';
import type { WebviewBundle } from './webviewHtml';

export function activate(context: vscode.ExtensionContext): FedKSeedApi {
  const log = vscode.window.createOutputChannel('FedKSeed', { log: true });
  const store = new RunStore();
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
  const controller = new TrainingController(context, store, log);

  context.subscriptions.push(
    log,
    store,
    webviewReady,
    dashboard,
    controller,
    createStatusBar(store),
    registerTrainingView(context.extensionUri, bridgeDeps),
    ...registerCommands({ dashboard, controller, store, log }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (affectsEngine(e)) controller.engineSettingsChanged();
    }),
  );
  log.info(`FedKSeed ${String(context.extension.packageJSON.version)} activated in VS Code ${vscode.version} (Node ${process.version})`);
  return {
    onDidWebviewReady: webviewReady.event,
    status: () => store.status,
    history: () => store.history,
    trainerPid: () => controller.trainer.pid,
    serverPid: () => controller.server.pid,
  };
}

export function deactivate(): void {
  // Everything is released through context.subscriptions.
}
