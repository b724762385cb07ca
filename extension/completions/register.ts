// Everything of completions the extension creates: the provider for every file, the hover and the status
// bar item naming a suggestion's source, the compare view's documents, and the `fedkseed.completions` context key that
// switches the Training view's lightbulb between on and off.
import * as vscode from 'vscode';
import { CONFIG_SECTION, readSettings } from '../config';
import { CompareDocuments } from './compare';
import { registerSuggestionHover, registerSuggestionStatus } from './hover';
import { FineTunedCompletionProvider, type CompletionClient, type WeightsLabel } from './provider';

/** Files on disk and new, unsaved ones: where a user writes code. */
export const EDITOR_DOCUMENTS: vscode.DocumentSelector = [{ scheme: 'file' }, { scheme: 'untitled' }];

export interface Completions extends vscode.Disposable {
  readonly provider: FineTunedCompletionProvider;
  readonly documents: CompareDocuments;
}

/** Turns completions on or off where the setting takes effect: the workspace's value when it has one, else the user's. */
export function setCompletionsEnabled(enabled: boolean): Thenable<void> {
  const config = vscode.workspace.getConfiguration(CONFIG_SECTION);
  const inWorkspace = config.inspect('completions.enabled')?.workspaceValue !== undefined;
  return config.update('completions.enabled', enabled, inWorkspace ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global);
}

export function registerCompletions(client: CompletionClient, log: vscode.LogOutputChannel, weightsLabel?: WeightsLabel): Completions {
  const provider = new FineTunedCompletionProvider(client, log, undefined, weightsLabel);
  const documents = new CompareDocuments();
  const syncContext = () => void vscode.commands.executeCommand('setContext', 'fedkseed.completions', readSettings().completions.enabled);
  syncContext();
  const disposables: vscode.Disposable[] = [
    provider,
    documents,
    vscode.languages.registerInlineCompletionItemProvider(EDITOR_DOCUMENTS, provider),
    registerSuggestionHover(provider, EDITOR_DOCUMENTS),
    registerSuggestionStatus(provider),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration(`${CONFIG_SECTION}.completions.enabled`)) syncContext();
    }),
  ];
  return { provider, documents, dispose: () => disposables.forEach((d) => d.dispose()) };
}
