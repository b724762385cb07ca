// Which weights Export and Evaluate act on: the run the dashboard shows, when it was opened from the
// history, is loaded from its checkpoint first (the trainer held a later run's weights); the sidebar says
// so, and Load Run Weights is one of the commands the sidebar may run.
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { FedKSeedApi } from '../../../extension/api';
import type { EvaluateResult, ExportModelResult, TrainingResult } from '../../../contracts/trainer-rpc';
import { webviewCommandIds } from '../../../contracts/webview-messages';
import { configure, ourExtension, quickRunSettings, runOk } from './helpers';

describe('weights of the run shown', function () {
  this.timeout(120_000);
  let api: FedKSeedApi;
  let scratch: string;

  before(async () => {
    api = await ourExtension().activate();
    scratch = mkdtempSync(join(tmpdir(), 'fedkseed-weights-'));
    await configure(quickRunSettings());
  });

  after(async () => {
    await vscode.commands.executeCommand('fedkseed.stopTraining');
    await runOk('fedkseed.openRun', null);
    await configure(quickRunSettings());
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    rmSync(scratch, { recursive: true, force: true });
  });

  it('Evaluate and Export act on the run opened from the history, not on the weights the trainer held', async () => {
    const earlier = await runOk<TrainingResult>('fedkseed.startTraining');
    await configure({ 'training.steps': 4 });
    const later = await runOk<TrainingResult>('fedkseed.startTraining');
    assert.equal(api.status().weights?.runId, later.weights.runId, "the trainer holds the later run's weights");
    assert.notEqual(earlier.weights.runId, later.weights.runId);

    await runOk('fedkseed.openRun', earlier.weights.runId);
    assert.equal(api.dashboardView().run?.id, earlier.weights.runId);
    assert.match(api.status().actsOnText ?? '', /shown in the dashboard/, 'the sidebar says Export and Evaluate act on the run shown');

    const evaluated = await runOk<EvaluateResult>('fedkseed.evaluateModel');
    assert.equal(evaluated.weights.runId, earlier.weights.runId, 'Evaluate scored the run shown');
    assert.equal(evaluated.weights.steps, 6);
    assert.equal(evaluated.weights.restored, true, 'from its checkpoint');
    // The weights of the run's final evaluation, rebuilt from its checkpoint (float32 sums in another order).
    assert.ok(Math.abs(evaluated.loss - (earlier.heldOutAfter ?? Number.NaN)) < 1e-5, `${evaluated.loss} against the run's ${earlier.heldOutAfter}`);
    assert.match(api.lastMessage() ?? '', /run shown in the dashboard/);
    assert.equal(api.status().actsOnText ?? null, null, "once loaded, the weights held are the run shown's");

    // The trainer holds the later run again; Export, with the earlier one still shown, writes the earlier one's.
    await runOk('fedkseed.loadRunWeights', later.weights.runId);
    const exported = await runOk<ExportModelResult>('fedkseed.exportModel', join(scratch, 'shown', 'model.onnx'));
    assert.equal(exported.weights.runId, earlier.weights.runId);
    assert.equal(exported.weights.steps, 6);
    assert.match(api.lastMessage() ?? '', /fine-tuned after step 6 .*run shown in the dashboard/);

    // Back to the live run: the weights held are what they act on.
    await runOk('fedkseed.openRun', null);
    await runOk('fedkseed.loadRunWeights', later.weights.runId);
    const held = await runOk<EvaluateResult>('fedkseed.evaluateModel');
    assert.equal(held.weights.runId, later.weights.runId);
  });

  it('the sidebar may run Load Run Weights… (its button beside the run history)', () => {
    assert.ok((webviewCommandIds as readonly string[]).includes('fedkseed.loadRunWeights'));
  });
});
