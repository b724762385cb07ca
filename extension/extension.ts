// Extension entry point: builds the services once and registers every view, command, status bar item
// and serializer as a Disposable of the extension context (so deactivation stops the trainer and the
// local server processes, a run in progress being recorded as interrupted). Runs live in the global
// storage; a run a reload took down is resumed from its checkpoint on activation.
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { FedKSeedApi } from './api';
import { lastMessage } from './commands/messages';
import { registerCommands } from './commands/registerCommands';
import { resumeInterruptedRun } from './commands/runs';
import { affectsEngine } from './config';
import { registerCompletions } from './completions/register';
import { RunRecords } from './state/runRecords';
import { RunStore } from './state/runStore';
import { createStatusBar, statusBarText } from './statusBar';
import { TrainingController } from './processes/trainingController';
import { DashboardPanelManager } from './views/dashboardPanel';
import { setupView } from './views/setup';
import { registerTrainingView } from './views/trainingViewProvider';
import type { WebviewBundle } from './webviewHtml';

export function activate(context: vscode.ExtensionContext): FedKSeedApi {
  const log = vscode.window.createOutputChannel('FedKSeed', { log: true });
  const records = new RunRecords(join(context.globalStorageUri.fsPath, 'runs'), (message) => log.warn(message));
  const workspace = vscode.workspace.workspaceFile?.toString() ?? vscode.workspace.workspaceFolders?.[0]?.uri.toString() ?? null;
  const store = new RunStore(records, workspace);
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
  const completions = registerCompletions(controller, log, (w) => store.weightsLabel(w));
  const deps = { dashboard, controller, store, log, completions };

  context.subscriptions.push(
    log,
    store,
    webviewReady,
    dashboard,
    controller,
    completions,
    createStatusBar(store),
    registerTrainingView(context.extensionUri, bridgeDeps),
    ...registerCommands(deps),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (affectsEngine(e)) controller.engineSettingsChanged();
    }),
  );
  log.info(`FedKSeed ${String(context.extension.packageJSON.version)} activated in VS Code ${vscode.version} (Node ${process.version})`);
  resumeInterruptedRun(deps);
  return {
    onDidWebviewReady: webviewReady.event,
    onDidChangeStatus: store.onDidChangeStatus,
    status: () => store.status,
    setup: () => setupView(),
    history: () => store.history,
    dashboardView: () => store.dashboard,
    runs: () => store.summaries,
    runFolder: (id) => records.folder(id),
    statusBarText: () => statusBarText(store.status),
    lastMessage,
    serverEvents: () => controller.serverEvents,
    trainerPid: () => controller.trainer.pid,
    serverPid: () => controller.server.pid,
    completionProvider: completions.provider,
    lastSuggestion: () => completions.provider.last,
  };
}

export function deactivate(): void {
  // Everything is released through context.subscriptions.
}
