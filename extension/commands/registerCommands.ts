// Registers every command the extension contributes. Each returns a CommandOutcome, so failures reach
// the user as a message and callers as data.
import * as vscode from 'vscode';
import { CommandIds, type CommandId } from '../ids';
import type { RunStore } from '../state/runStore';
import type { TrainingController } from '../processes/trainingController';
import type { DashboardPanelManager } from '../views/dashboardPanel';
import { connectFederation, disconnectFederation, setFederationToken, startLocalFederation, startLocalServer, stopLocalServer } from './federation';
import { runCommand } from './outcome';
import { compareRuns, loadRunWeights, openRun, removeRun, resumeRun } from './runs';
import { selectDataset, selectModel } from './selection';
import { evaluateModel, exportModel, startTraining, stopTraining } from './training';
import { compareCompletions } from '../completions/compare';
import { setCompletionsEnabled, type Completions } from '../completions/register';

export interface CommandDeps {
  dashboard: DashboardPanelManager;
  controller: TrainingController;
  store: RunStore;
  log: vscode.LogOutputChannel;
  completions: Completions;
}

export function registerCommands(deps: CommandDeps): vscode.Disposable[] {
  const handlers: Record<CommandId, [string, (arg: unknown) => Promise<unknown>]> = {
    [CommandIds.showDashboard]: ['Show Dashboard', async () => deps.dashboard.show()],
    [CommandIds.startTraining]: ['Start Training', () => startTraining(deps)],
    [CommandIds.stopTraining]: ['Stop Training', () => stopTraining(deps)],
    [CommandIds.connectFederation]: ['Connect to Federation', (arg) => connectFederation(deps, arg)],
    [CommandIds.disconnectFederation]: ['Disconnect from Federation', () => disconnectFederation(deps)],
    [CommandIds.startLocalFederation]: ['Start Local Federation', () => startLocalFederation(deps)],
    [CommandIds.startLocalServer]: ['Start Local Server', () => startLocalServer(deps)],
    [CommandIds.stopLocalServer]: ['Stop Local Server', () => stopLocalServer(deps)],
    [CommandIds.selectModel]: ['Select Model', (arg) => selectModel(arg)],
    [CommandIds.selectDataset]: ['Select Dataset', (arg) => selectDataset(arg)],
    [CommandIds.setFederationToken]: ['Set Federation Token', (arg) => setFederationToken(deps, arg)],
    [CommandIds.evaluateModel]: ['Evaluate Model', () => evaluateModel(deps)],
    [CommandIds.exportModel]: ['Export Fine-Tuned Model', (arg) => exportModel(deps, arg)],
    [CommandIds.showLogs]: ['Show Logs', async () => deps.log.show()],
    [CommandIds.openRun]: ['Open Run', (arg) => openRun(deps, arg)],
    [CommandIds.compareRuns]: ['Compare Runs', (arg) => compareRuns(deps, arg)],
    [CommandIds.removeRun]: ['Remove Run', (arg) => removeRun(deps, arg)],
    [CommandIds.loadRunWeights]: ['Load Run Weights', (arg) => loadRunWeights(deps, arg)],
    [CommandIds.resumeRun]: ['Resume Run', (arg) => resumeRun(deps, arg)],
    [CommandIds.enableCompletions]: ['Turn On Completions', () => Promise.resolve(setCompletionsEnabled(true))],
    [CommandIds.disableCompletions]: ['Turn Off Completions', () => Promise.resolve(setCompletionsEnabled(false))],
    [CommandIds.compareCompletions]: ['Compare Completions', () => compareCompletions(deps.controller, deps.completions.documents)],
  };
  return Object.entries(handlers).map(([id, [what, handler]]) =>
    vscode.commands.registerCommand(id, (arg: unknown) => runCommand(deps.log, what, () => handler(arg))),
  );
}
