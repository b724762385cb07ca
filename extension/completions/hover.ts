// Where a suggestion came from: hovering a line it was offered on or reaches names the model and its weights
// (base, or fine-tuned after which step or round) and how long it took.
import { basename } from 'node:path';
import * as vscode from 'vscode';
import type { FineTunedCompletionProvider, ShownSuggestion } from './provider';

export function suggestionHoverText(s: ShownSuggestion): string {
  const r = s.result;
  const timing = r.firstTokenMs !== null ? `first token after ${r.firstTokenMs.toFixed(0)} ms, ${r.tokens} tokens in ${r.totalMs.toFixed(0)} ms` : `${r.totalMs.toFixed(0)} ms`;
  return `**FedKSeed suggestion** from ${s.sourceText} (${basename(r.modelPath)}) · ${timing}`;
}

export function registerSuggestionHover(provider: FineTunedCompletionProvider, selector: vscode.DocumentSelector): vscode.Disposable {
  return vscode.languages.registerHoverProvider(
    selector,
    {
      provideHover(document, position) {
        const shown = provider.suggestionAt(document.uri.toString(), position.line);
        return shown && new vscode.Hover(new vscode.MarkdownString(suggestionHoverText(shown)));
      },
    },
  );
}
