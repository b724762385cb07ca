// Registers every command the extension contributes; each command lives in its own module.
import * as vscode from 'vscode';
import { CommandIds, type CommandId } from '../ids';
import type { DashboardPanelManager } from '../views/dashboardPanel';
import { showDashboard } from './showDashboard';

export interface CommandDeps {
  dashboard: DashboardPanelManager;
}

export function registerCommands(deps: CommandDeps): vscode.Disposable[] {
  const handlers: Record<CommandId, () => unknown> = {
    [CommandIds.showDashboard]: () => showDashboard(deps.dashboard),
  };
  return Object.entries(handlers).map(([id, handler]) => vscode.commands.registerCommand(id, handler));
}
