// Inline completions (ghost text) from the model being fine-tuned. Each request waits for a short pause
// in typing, then asks the trainer; the editor's cancellation token goes with the request, so typing on
// cancels the generator in the trainer between two tokens. Off unless fedkseed.completions.enabled.
import * as vscode from 'vscode';
import { COMPLETION_DEFAULTS } from '../../contracts/defaults';
import { describeCompletionSource, type CompleteParams, type CompleteResult } from '../../contracts/trainer-payloads';
import { readSettings } from '../config';
import { modelDisplayName } from '../modelName';
import { trimOverlap } from './overlap';
import { errorMessage } from '../../protocol/errors';

/** Suggestions the hover can still name (lines of other edits may have moved them; they are hints). */
const RECENT_SUGGESTIONS = 20;

export interface CompletionClient {
  complete(params: CompleteParams, token?: vscode.CancellationToken): Promise<CompleteResult>;
}

/** A suggestion handed to the editor: where, and where it came from (the hover says so). */
export interface ShownSuggestion {
  readonly uri: string;
  readonly line: number;
  /** The last line the suggestion reaches once accepted (a suggestion may span lines). */
  readonly endLine: number;
  readonly character: number;
  readonly result: CompleteResult;
  /** "fine-tuned after step 40", "the base model (not fine-tuned)". */
  readonly sourceText: string;
  /** Where it comes from in a few words: "FedKSeed · tiny-code-lm · run 3 step 40". */
  readonly label: string;
  /** The text offered (the trainer's, less the whitespace already before the cursor). */
  readonly text: string;
}

/** Weights in a few words: "base", "run 3 step 40", "run 2 round 4". */
export type WeightsLabel = (weights: CompleteResult['weights']) => string;

/** "FedKSeed · tiny-code-lm · run 3 step 40": the model by its name and the weights that wrote it. */
export function suggestionLabel(result: Pick<CompleteResult, 'modelPath' | 'source' | 'weights'>, weightsLabel: WeightsLabel): string {
  return `FedKSeed · ${modelDisplayName(result.modelPath)} · ${result.source === 'base' ? 'base' : weightsLabel(result.weights)}`;
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
  /** The latest suggestions, newest last: accepting one moves the cursor and asks for the next. */
  private readonly recent: ShownSuggestion[] = [];
  /** Requests that ended cancelled (the user typed on), for the log and the tests. */
  cancelled = 0;

  constructor(
    private readonly client: CompletionClient,
    private readonly log: vscode.LogOutputChannel,
    private readonly debounceMs = COMPLETION_DEFAULTS.debounceMs,
    private readonly weightsLabel: WeightsLabel = (w) =>
      w && w.kind !== 'base' ? `${w.kind === 'federation' ? `round ${w.round}` : `step ${w.steps}`}` : 'base',
  ) {}

  async provideInlineCompletionItems(
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionItem[] | undefined> {
    const settings = readSettings().completions;
    if (!settings.enabled) return undefined;
    // While the suggest widget has an item selected, the editor shows only completions that extend it.
    if (context.selectedCompletionInfo) return undefined;
    if (!(await pause(this.debounceMs, token))) return undefined;
    let result: CompleteResult;
    const prefix = prefixAt(document, position);
    try {
      result = await this.client.complete(
        { prefix, source: settings.source, maxTokens: settings.maxTokens, sampling: settings.sampling, stop: settings.stop },
        token,
      );
    } catch (err) {
      if (token.isCancellationRequested) return undefined;
      this.log.warn(`completion failed: ${errorMessage(err)}`);
      return undefined;
    }
    if (result.finish === 'cancelled' || token.isCancellationRequested) {
      this.cancelled++;
      return undefined;
    }
    // The model writes words with their leading space: after "= " that space is already typed.
    const text = trimOverlap(prefix, result.text);
    if (text.trim() === '') return undefined;
    const endLine = position.line + (text.match(/\n/g)?.length ?? 0);
    const suggestion: ShownSuggestion = {
      uri: document.uri.toString(),
      line: position.line,
      endLine,
      character: position.character,
      result,
      sourceText: describeCompletionSource(result),
      label: suggestionLabel(result, this.weightsLabel),
      text,
    };
    this.last = suggestion;
    this.recent.push(suggestion);
    if (this.recent.length > RECENT_SUGGESTIONS) this.recent.shift();
    this.shown.fire(suggestion);
    this.log.debug(
      `completion from ${suggestion.sourceText}: ${result.tokens} tokens, first after ${result.firstTokenMs?.toFixed(0) ?? '-'} ms, ${result.totalMs.toFixed(0)} ms in all`,
    );
    return [new vscode.InlineCompletionItem(text, new vscode.Range(position, position))];
  }

  /** The newest suggestion shown on `line` of the document `uri` (or reaching it), if any. */
  suggestionAt(uri: string, line: number): ShownSuggestion | undefined {
    for (let i = this.recent.length - 1; i >= 0; i--) {
      const x = this.recent[i];
      if (x.uri === uri && x.line <= line && line <= x.endLine) return x;
    }
    return undefined;
  }

  dispose(): void {
    this.shown.dispose();
  }
}
