// Helpers for extension-host tests: the extension under test, its manifest, settings, and polling.
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { FedKSeedApi } from '../../../extension/api';
import type { CommandOutcome } from '../../../extension/commands/outcome';

export const EXTENSION_ID = 'fedkseed.fedkseed';

export function ourExtension(): vscode.Extension<FedKSeedApi> {
  const extension = vscode.extensions.getExtension<FedKSeedApi>(EXTENSION_ID);
  if (!extension) throw new Error(`extension ${EXTENSION_ID} is not installed in this VS Code`);
  return extension;
}

interface ContributedCommand {
  command: string;
  title: string;
  category?: string;
}

/** The commands package.json contributes, read from the manifest VS Code loaded. */
export function contributedCommands(): ContributedCommand[] {
  const manifest = ourExtension().packageJSON as { contributes?: { commands?: ContributedCommand[] } };
  return manifest.contributes?.commands ?? [];
}

export async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Resolves with the next webview of `kind` to finish its ready handshake. */
export function nextWebviewReady(api: FedKSeedApi, kind: string, timeoutMs = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      subscription.dispose();
      reject(new Error(`the ${kind} webview did not report ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const subscription = api.onDidWebviewReady((ready) => {
      if (ready !== kind) return;
      clearTimeout(timer);
      subscription.dispose();
      resolve();
    });
  });
}

export function dashboardTabs(): vscode.Tab[] {
  return vscode.window.tabGroups.all
    .flatMap((group) => group.tabs)
    .filter((tab) => tab.input instanceof vscode.TabInputWebview && tab.input.viewType.endsWith('fedkseed.dashboard'));
}

/** Runs one of our commands and returns its outcome. */
export async function run<T>(command: string, arg?: unknown): Promise<CommandOutcome<T>> {
  const outcome = await vscode.commands.executeCommand<CommandOutcome<T>>(command, arg);
  if (!outcome || typeof outcome !== 'object' || !('ok' in outcome)) throw new Error(`${command} returned no outcome`);
  return outcome;
}

export async function runOk<T>(command: string, arg?: unknown): Promise<T> {
  const outcome = await run<T>(command, arg);
  if (!outcome.ok) throw new Error(`${command} failed: ${outcome.error}`);
  return outcome.value;
}

export async function runFails(command: string, arg?: unknown): Promise<string> {
  const outcome = await run(command, arg);
  if (outcome.ok) throw new Error(`${command} succeeded but was expected to fail`);
  return outcome.error;
}

/** Sets `fedkseed.*` settings where the Select commands write them (the workspace, when one is open). */
export async function configure(settings: Record<string, unknown>): Promise<void> {
  const config = vscode.workspace.getConfiguration('fedkseed');
  const target = vscode.workspace.workspaceFolders?.length ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  for (const [key, value] of Object.entries(settings)) await config.update(key, value, target);
}

/** Settings of a run small enough for a test: the bundled model on this repository's trainer/data. */
export function quickRunSettings(): Record<string, unknown> {
  return {
    'data.path': join(ourExtension().extensionPath, 'trainer', 'data'),
    'model.path': '',
    'training.batchSize': 1,
    'training.sequenceLength': 32,
    'training.k': 64,
    'training.steps': 6,
    'training.evalEvery': 3,
    // The weights at the run's end, so a test knows which step it holds ('best' has a test of its own).
    'training.keep': 'last',
    'engine.threads': 1,
    'localServer.port': 0,
    'localServer.rounds': 2,
    'localServer.tau': 3,
  };
}
