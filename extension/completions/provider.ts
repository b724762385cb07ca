// Inline completions (ghost text) from the model being fine-tuned. Each request waits for a short pause
// in typing, then asks the trainer; the editor's cancellation token goes with the request, so typing on
// cancels the generator in the trainer between two tokens. Off unless fedkseed.completions.enabled.
import * as vscode from 'vscode';
import { COMPLETION_DEFAULTS } from '../../contracts/defaults';
import { describeCompletionSource, type CompleteParams, type CompleteResult } from '../../contracts/trainer-payloads';
import { readSettings } from '../config';

export interface CompletionClient {
  complete(params: CompleteParams, token?: vscode.CancellationToken): Promise<CompleteResult>;
}

/** The suggestion last shown: where, and where it came from (the hover says so). */
export interface ShownSuggestion {
  readonly uri: string;
  readonly line: number;
  readonly character: number;
  readonly result: CompleteResult;
  /** "fine-tuned after step 40", "the base model (not fine-tuned)". */
  readonly sourceText: string;
}

/** The text before `position`, at most `chars` characters of it. */
export function prefixAt(document: vscode.TextDocument, position: vscode.Position, chars = COMPLETION_DEFAULTS.prefixChars): string {
  const end = document.offsetAt(position);
  return document.getText(new vscode.Range(document.positionAt(Math.max(0, end - chars)), position));
}

function pause(ms: number, token: vscode.CancellationToken): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      listener.dispose();
      resolve(true);
    }, ms);
    const listener = token.onCancellationRequested(() => {
      clearTimeout(timer);
      listener.dispose();
      resolve(false);
    });
  });
}

export class FineTunedCompletionProvider implements vscode.InlineCompletionItemProvider, vscode.Disposable {
  private readonly shown = new vscode.EventEmitter<ShownSuggestion>();
  /** Fires with each suggestion handed to the editor. */
  readonly onDidProvide = this.shown.event;
  last: ShownSuggestion | undefined;
  /** Requests that ended cancelled (the user typed on), for the log and the tests. */
  cancelled = 0;

  constructor(
    private readonly client: CompletionClient,
    private readonly log: vscode.LogOutputChannel,
    private readonly debounceMs = COMPLETION_DEFAULTS.debounceMs,
  ) {}

  async provideInlineCompletionItems(document: vscode.TextDocument, position: vscode.Position, context: vscode.InlineCompletionContext, token: vscode.CancellationToken): Promise<vscode.InlineCompletionItem[] | undefined> {
    const settings = readSettings().completions;
    if (!settings.enabled) return undefined;
    // While the suggest widget has an item selected, the editor shows only completions that extend it.
    if (context.selectedCompletionInfo) return undefined;
    if (!(await pause(this.debounceMs, token))) return undefined;
    let result: CompleteResult;
    try {
      result = await this.client.complete(
        { prefix: prefixAt(document, position), source: settings.source, maxTokens: settings.maxTokens, sampling: settings.sampling, stop: settings.stop },
        token,
      );
    } catch (err) {
      if (token.isCancellationRequested) return undefined;
      this.log.warn(`completion failed: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
    if (result.finish === 'cancelled' || token.isCancellationRequested) {
      this.cancelled++;
      return undefined;
    }
    if (result.text.trim() === '') return undefined;
    const suggestion: ShownSuggestion = { uri: document.uri.toString(), line: position.line, character: position.character, result, sourceText: describeCompletionSource(result) };
    this.last = suggestion;
    this.shown.fire(suggestion);
    this.log.debug(`completion from ${suggestion.sourceText}: ${result.tokens} tokens, first after ${result.firstTokenMs?.toFixed(0) ?? '-'} ms, ${result.totalMs.toFixed(0)} ms in all`);
    return [new vscode.InlineCompletionItem(result.text, new vscode.Range(position, position))];
  }

  dispose(): void {
    this.shown.dispose();
  }
}
