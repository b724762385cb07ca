// "Compare Base and Fine-Tuned Completions at the Cursor": both models complete the text before the
// cursor (greedy, to the end of the block) and a diff view shows them side by side, each after the
// cursor line's text, so a user can judge the fine-tuning on their own code.
import { extname } from 'node:path';
import * as vscode from 'vscode';
import type { CompleteParams } from '../../contracts/trainer-payloads';
import { describeCompletionSource } from '../../contracts/trainer-payloads';
import { readSettings } from '../config';
import { UserFacingError } from '../errors';
import { prefixAt, type CompletionClient } from './provider';

export const COMPARE_SCHEME = 'fedkseed-compare';

export interface ComparedCompletions {
  readonly base: string;
  readonly fineTuned: string;
  /** What the fine-tuned side is: "fine-tuned after step 40". */
  readonly fineTunedSource: string;
}

/** The documents of the diff view, by path; read-only. */
export class CompareDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly texts = new Map<string, string>();
  private readonly registration = vscode.workspace.registerTextDocumentContentProvider(COMPARE_SCHEME, this);
  private counter = 0;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.path) ?? '';
  }

  add(name: string, ext: string, text: string): vscode.Uri {
    const path = `/${++this.counter}/${name}${ext}`;
    this.texts.set(path, text);
    return vscode.Uri.from({ scheme: COMPARE_SCHEME, path });
  }

  dispose(): void {
    this.registration.dispose();
    this.texts.clear();
  }
}

export async function compareCompletions(client: CompletionClient, documents: CompareDocuments): Promise<ComparedCompletions> {
  const editor = vscode.window.activeTextEditor;
  if (!editor) throw new UserFacingError('open a file and place the cursor where the completions should start');
  const { document, selection } = editor;
  const position = selection.active;
  const settings = readSettings().completions;
  const common: Omit<CompleteParams, 'source'> = {
    prefix: prefixAt(document, position),
    maxTokens: Math.max(settings.maxTokens, 48),
    sampling: { mode: 'greedy' },
    stop: 'block',
  };
  const base = await client.complete({ ...common, source: 'base' });
  const tuned = await client.complete({ ...common, source: 'current' });
  const head = document.lineAt(position.line).text.slice(0, position.character);
  const ext = extname(document.fileName);
  const fineTunedSource = describeCompletionSource(tuned);
  const left = documents.add('base-model', ext, head + base.text);
  const right = documents.add('fine-tuned', ext, head + tuned.text);
  const where = `${vscode.workspace.asRelativePath(document.uri)}:${position.line + 1}`;
  await vscode.commands.executeCommand('vscode.diff', left, right, `Base model ↔ ${fineTunedSource} at ${where}`, { preview: true });
  return { base: base.text, fineTuned: tuned.text, fineTunedSource };
}
