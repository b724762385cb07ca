// Where a suggestion came from: hovering a line it was offered on or reaches names the model and its weights
// (base, or fine-tuned after which step or round of which run) and how long it took. The ghost text itself
// takes no hover (the editor shows its accept toolbar there), so a status bar item names the suggestion on
// screen as well.
import * as vscode from 'vscode';
import type { FineTunedCompletionProvider, ShownSuggestion } from './provider';

export function suggestionHoverText(s: ShownSuggestion): string {
  const r = s.result;
  const timing =
    r.firstTokenMs !== null
      ? `first token after ${r.firstTokenMs.toFixed(0)} ms, ${r.tokens} tokens in ${r.totalMs.toFixed(0)} ms`
      : `${r.totalMs.toFixed(0)} ms`;
  return `**FedKSeed suggestion** · ${s.label.replace(/^FedKSeed · /, '')} (${s.sourceText}) · ${timing}`;
}

export function registerSuggestionHover(provider: FineTunedCompletionProvider, selector: vscode.DocumentSelector): vscode.Disposable {
  return vscode.languages.registerHoverProvider(selector, {
    provideHover(document, position) {
      const shown = provider.suggestionAt(document.uri.toString(), position.line);
      return shown && new vscode.Hover(new vscode.MarkdownString(suggestionHoverText(shown)));
    },
  });
}

/** The status bar names the suggestion on screen ("FedKSeed · tiny-code-lm · run 3 step 40") until the cursor leaves its lines. */
export function registerSuggestionStatus(provider: FineTunedCompletionProvider): vscode.Disposable {
  const item = vscode.window.createStatusBarItem('fedkseed.suggestion', vscode.StatusBarAlignment.Right, 100);
  item.name = 'FedKSeed Suggestion';
  let shown: ShownSuggestion | undefined;
  const hide = () => {
    shown = undefined;
    item.hide();
  };
  return vscode.Disposable.from(
    item,
    provider.onDidProvide((s) => {
      shown = s;
      item.text = `$(sparkle) ${s.label}`;
      item.tooltip = new vscode.MarkdownString(suggestionHoverText(s));
      item.accessibilityInformation = { label: `Suggestion from ${s.label.replace(/ · /g, ', ')}` };
      item.show();
    }),
    vscode.window.onDidChangeTextEditorSelection(({ textEditor, selections }) => {
      if (!shown) return;
      const line = selections[0]?.active.line ?? -1;
      if (textEditor.document.uri.toString() !== shown.uri || line < shown.line || line > shown.endLine) hide();
    }),
    vscode.window.onDidChangeActiveTextEditor(hide),
  );
}
