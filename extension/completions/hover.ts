// Where a suggestion came from: hovering the line it was offered on names the model and its weights
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
        const last = provider.last;
        if (!last || last.uri !== document.uri.toString() || last.line !== position.line) return undefined;
        return new vscode.Hover(new vscode.MarkdownString(suggestionHoverText(last)));
      },
    },
  );
}
