// Completions in the editor against the real trainer process (the bundled model): the provider returns
// items from the trainer and names their source, a cancelled request yields nothing, a local run's
// weights complete once it ends (the hover says "fine-tuned after step N"), the toggle commands flip the
// setting, and Compare opens the base and fine-tuned completions side by side.
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { FedKSeedApi } from '../../../extension/api';
import type { TrainingResult } from '../../../contracts/trainer-rpc';
import { configure, ourExtension, quickRunSettings, runOk } from './helpers';

const CODE = 'export function loadOrders(items: Order[], limit = 10): Order[] {\n  return items.';
const invoke: vscode.InlineCompletionContext = { triggerKind: vscode.InlineCompletionTriggerKind.Invoke, selectedCompletionInfo: undefined };

describe('completions', function () {
  this.timeout(120_000);
  let api: FedKSeedApi;
  let scratch: string;
  let doc: vscode.TextDocument;
  let end: vscode.Position;

  before(async () => {
    api = await ourExtension().activate();
    scratch = mkdtempSync(join(tmpdir(), 'fedkseed-completions-'));
    const file = join(scratch, 'orders.ts');
    writeFileSync(file, CODE);
    doc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
    await vscode.window.showTextDocument(doc);
    end = doc.positionAt(CODE.length);
  });

  after(async () => {
    await configure({ 'completions.enabled': false });
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    rmSync(scratch, { recursive: true, force: true });
  });

  it('is off by default: the provider offers nothing until it is turned on', async () => {
    assert.equal(vscode.workspace.getConfiguration('fedkseed').inspect('completions.enabled')?.defaultValue, false);
    await configure({ ...quickRunSettings(), 'completions.enabled': false });
    assert.equal(await api.completionProvider.provideInlineCompletionItems(doc, end, invoke, new vscode.CancellationTokenSource().token), undefined);
  });

  it('the toggle commands turn it on and off', async () => {
    await runOk('fedkseed.disableCompletions');
    assert.equal(vscode.workspace.getConfiguration('fedkseed').get('completions.enabled'), false);
    await runOk('fedkseed.enableCompletions');
    assert.equal(vscode.workspace.getConfiguration('fedkseed').get('completions.enabled'), true);
  });

  it('returns items from the trainer, with their source; a cancelled request returns nothing', async () => {
    await configure({ 'completions.enabled': true, 'completions.stop': 'line', 'completions.maxTokens': 16 });
    const items = await api.completionProvider.provideInlineCompletionItems(doc, end, invoke, new vscode.CancellationTokenSource().token);
    const list = Array.isArray(items) ? items : (items?.items ?? []);
    assert.equal(list.length, 1);
    assert.ok(typeof list[0].insertText === 'string' && list[0].insertText.trim() !== '');
    assert.ok(!list[0].insertText.trimStart().includes('\n'), 'one line');
    const shown = api.lastSuggestion();
    assert.equal(shown?.text, list[0].insertText);
    assert.equal(shown?.label, 'FedKSeed · tiny-code-lm · base', 'the suggestion names the model by its folder and its weights');
    assert.equal(shown?.result.weights?.kind, 'base');

    // Cancelled while waiting for the pause in typing, and while the trainer decodes: nothing is offered.
    const typing = new vscode.CancellationTokenSource();
    const early = api.completionProvider.provideInlineCompletionItems(doc, end, invoke, typing.token);
    typing.cancel();
    assert.equal(await early, undefined);
    await configure({ 'completions.maxTokens': 256, 'completions.stop': 'block' });
    const later = new vscode.CancellationTokenSource();
    const pending = api.completionProvider.provideInlineCompletionItems(doc, end, invoke, later.token);
    setTimeout(() => later.cancel(), 170);
    assert.equal(await pending, undefined);
    assert.equal(api.lastSuggestion(), shown, 'no newer suggestion was recorded');
    await configure({ 'completions.maxTokens': 16, 'completions.stop': 'line' });
  });

  it('after a local run, suggestions come from its weights and the hover names them', async () => {
    const result = await runOk<TrainingResult>('fedkseed.startTraining');
    assert.equal(result.weights.kind, 'local');
    const items = await api.completionProvider.provideInlineCompletionItems(doc, end, invoke, new vscode.CancellationTokenSource().token);
    assert.ok(items);
    const shown = api.lastSuggestion();
    assert.equal(shown?.result.weights?.kind, 'local');
    assert.equal(shown?.result.weights?.steps, result.totalSteps);
    const hovers = await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', doc.uri, end);
    const text = hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : c.value))).join('\n');
    const n =
      api
        .runs()
        .filter((r) => r.kind !== 'evaluation')
        .reverse()
        .findIndex((r) => r.id === result.weights.runId) + 1;
    assert.ok(n > 0, 'the run is in the history');
    assert.equal(shown?.label, `FedKSeed · tiny-code-lm · run ${n} step ${result.totalSteps}`);
    assert.match(
      text,
      new RegExp(`FedKSeed suggestion\\*\\* · tiny-code-lm · run ${n} step ${result.totalSteps} \\(fine-tuned after step ${result.totalSteps}\\)`),
    );
    assert.doesNotMatch(text, /model\.onnx/);
  });

  it('a suggestion after a space does not repeat it: accepted, the line has one space where the cursor was', async () => {
    const line = '  const total = ';
    const file = join(scratch, 'total.ts');
    writeFileSync(file, `${CODE.replace(/items\.$/, 'items;')}\n${line}`);
    const totalDoc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
    const editor = await vscode.window.showTextDocument(totalDoc);
    const at = totalDoc.positionAt(totalDoc.getText().length);
    const items = await api.completionProvider.provideInlineCompletionItems(totalDoc, at, invoke, new vscode.CancellationTokenSource().token);
    const list = Array.isArray(items) ? items : (items?.items ?? []);
    const shown = api.lastSuggestion();
    assert.ok(shown && list[0] && typeof list[0].insertText === 'string');
    assert.equal(list[0].insertText, shown.text);
    assert.ok(
      !/^[ \t]/.test(shown.text),
      `the offered text does not start with the space already typed: ${JSON.stringify(shown.text)} (the model's: ${JSON.stringify(shown.result.text)})`,
    );
    await editor.edit((e) => e.insert(at, shown.text));
    const accepted = totalDoc.lineAt(at.line).text;
    assert.ok(accepted.startsWith(line) && !accepted.startsWith(`${line} `), `one space after "=": ${JSON.stringify(accepted)}`);
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
  });

  it('compare shows the base and the fine-tuned completions side by side', async () => {
    await vscode.window.showTextDocument(doc, { selection: new vscode.Range(end, end) });
    const compared = await runOk<{ base: string; fineTuned: string; fineTunedSource: string }>('fedkseed.compareCompletions');
    assert.match(compared.fineTunedSource, /^fine-tuned after step \d+$/);
    const diff = vscode.window.tabGroups.all
      .flatMap((g) => g.tabs)
      .find((t) => t.input instanceof vscode.TabInputTextDiff && t.input.original.scheme === 'fedkseed-compare');
    assert.ok(diff, 'a diff tab of the two completions');
    const input = diff.input as vscode.TabInputTextDiff;
    const [left, right] = await Promise.all([vscode.workspace.openTextDocument(input.original), vscode.workspace.openTextDocument(input.modified)]);
    assert.equal(left.getText(), `  return items.${compared.base}`);
    assert.equal(right.getText(), `  return items.${compared.fineTuned}`);
  });
});
