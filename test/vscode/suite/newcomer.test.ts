// A newcomer's first hour in VS Code: a second local federation is a new one, an export does not end up
// in the data, a new run does not show an earlier failure, and the sidebar names what Start will use.
import * as assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { FedKSeedApi } from '../../../extension/api';
import type { ExportModelResult, FederationResult, TrainingResult } from '../../../contracts/trainer-rpc';
import { proposedExport } from '../../../extension/commands/training';
import { configure, quickRunSettings, ourExtension, run, runOk } from './helpers';

/** Runs a local training and returns its "N training / M held-out examples" as the trainer said it. */
async function trainedOn(api: FedKSeedApi): Promise<{ train: number; heldOut: number }> {
  let counts: { train: number; heldOut: number } | undefined;
  const watch = api.onDidChangeStatus((s) => {
    const m = /(\d+) training \/ (\d+) held-out examples/.exec(s.trainer.detail ?? '');
    if (m) counts = { train: Number(m[1]), heldOut: Number(m[2]) };
  });
  try {
    await runOk<TrainingResult>('fedkseed.startTraining');
  } finally {
    watch.dispose();
  }
  assert.ok(counts, 'the trainer said how many examples it trains on');
  return counts;
}

describe('newcomer', function () {
  this.timeout(120_000);
  let api: FedKSeedApi;
  let scratch: string;
  const repo = () => ourExtension().extensionPath;

  before(async () => {
    api = await ourExtension().activate();
    scratch = mkdtempSync(join(tmpdir(), 'fedkseed-newcomer-'));
    await configure(quickRunSettings());
  });

  after(async () => {
    await vscode.commands.executeCommand('fedkseed.stopTraining');
    await vscode.commands.executeCommand('fedkseed.stopLocalServer');
    await configure(quickRunSettings());
    rmSync(scratch, { recursive: true, force: true });
  });

  it('a second Start Local Federation after one finished starts a new federation with the current settings', async () => {
    await configure({ 'localServer.rounds': 2 });
    const first = await runOk<FederationResult>('fedkseed.startLocalFederation');
    assert.equal(first.finalRound, 2);
    const firstServer = api.serverPid();
    const firstRun = api.runs()[0]!.id;
    // The finished server is left running, as a user would; the setting changes before the next start.
    await configure({ 'localServer.rounds': 3 });
    try {
      const second = await runOk<FederationResult>('fedkseed.startLocalFederation');
      assert.equal(second.finalRound, 3, 'the new federation runs the rounds the settings say now');
      assert.notEqual(api.serverPid(), firstServer, 'the finished server was replaced');
      const latest = api.runs()[0]!;
      assert.notEqual(latest.id, firstRun);
      assert.deepEqual({ rounds: latest.rounds, committed: latest.committedRound }, { rounds: 3, committed: 3 });
      assert.deepEqual(
        api.history().rounds.map((r) => r.round),
        [1, 2, 3],
        'every round of the new federation trained',
      );
      assert.ok(api.history().stepLoss.length > 0, 'the new run trained steps');
      assert.equal(api.status().localServer?.rounds, 3);
    } finally {
      await runOk('fedkseed.stopLocalServer');
      await configure({ 'localServer.rounds': 2 });
    }
  });

  it('a model exported into the data folder is not trained on; Export proposes a path outside the data', async () => {
    const data = join(scratch, 'data');
    mkdirSync(data, { recursive: true });
    cpSync(join(repo(), 'trainer', 'data'), data, { recursive: true });
    await configure({ 'data.path': data, 'training.steps': 2 });
    try {
      const before = await trainedOn(api);
      assert.equal(api.status().model, 'tiny-code-lm', 'the sidebar names the model, not its file model.onnx');
      // Where the old proposal put it: a folder of the data.
      const exported = await runOk<ExportModelResult>('fedkseed.exportModel', join(data, 'fine-tuned', 'model.onnx'));
      assert.ok(existsSync(exported.path) && existsSync(join(data, 'fine-tuned', 'tokenizer.json')));
      const after = await trainedOn(api);
      assert.deepEqual(after, before, 'the exported tokenizer.json and config are not examples');

      // The proposal is FedKSeed's working folder of the workspace, which no dataset reads.
      const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
      if (root) {
        const proposed = proposedExport(api.status().weights)?.fsPath ?? '';
        assert.equal(proposed, join(root, '.fedkseed', 'exports', `local-step-2-${api.runs()[0]!.id.replace(/-[0-9a-f]+$/, '')}`, 'model.onnx'));
        await runOk<ExportModelResult>('fedkseed.exportModel', join(root, '.fedkseed', 'exports', 'test', 'model.onnx'));
        assert.ok(existsSync(join(root, '.fedkseed', '.gitignore')), 'the working folder is kept out of git');
        assert.ok(readdirSync(join(root, '.fedkseed', 'exports', 'test')).includes('tokenizer.json'));
        rmSync(join(root, '.fedkseed'), { recursive: true, force: true });
      }
    } finally {
      await configure({ 'data.path': join(repo(), 'trainer', 'data'), 'training.steps': 6 });
    }
  });

  it('a new run clears an earlier failure from the views; a federation never joined is not "0 of 0 rounds done"', async () => {
    const refused = await run('fedkseed.connectFederation', 'ws://127.0.0.1:1');
    assert.ok(!refused.ok);
    assert.equal(api.status().trainer.state, 'error');
    assert.doesNotMatch(api.status().figures.text.progress, /0 of 0/);
    assert.doesNotMatch(api.statusBarText(), /0 of 0/);

    // A second failure, found before the trainer is asked: the views show it, not the first one.
    await configure({ 'data.path': join(scratch, 'no-such-data') });
    try {
      const missing = await run('fedkseed.startTraining');
      assert.ok(!missing.ok);
      assert.equal(api.status().trainer.state, 'error');
      assert.match(api.status().trainer.detail ?? '', /dataset not found/);
      assert.doesNotMatch(api.status().trainer.detail ?? '', /127\.0\.0\.1:1|refused/i);
    } finally {
      await configure({ 'data.path': join(repo(), 'trainer', 'data') });
    }
    // A run that starts leaves no error behind, from its first status on.
    const states: string[] = [];
    const watch = api.onDidChangeStatus((s) => states.push(`${s.trainer.state}:${s.trainer.detail ?? ''}`));
    try {
      await runOk<TrainingResult>('fedkseed.startTraining');
    } finally {
      watch.dispose();
    }
    assert.ok(states.length > 0);
    assert.ok(!states.some((s) => /dataset not found|refused/i.test(s)), `statuses during the run: ${states.slice(0, 5).join(' | ')}`);
    assert.equal(api.status().trainer.state, 'finished');
  });

  it('the sidebar names the model and data Start will use, and where each is set', async () => {
    await configure({ 'model.path': '' });
    const bundled = api.setup();
    assert.equal(bundled.model.name, 'tiny-code-lm (bundled)');
    assert.match(bundled.data?.name ?? '', /data\/$/);
    assert.match(bundled.data?.detail ?? '', /text and code files · set in Workspace settings/);

    const model = join(repo(), 'models', 'tiny-code-lm', 'model.onnx');
    await runOk('fedkseed.selectModel', model);
    const selected = api.setup();
    assert.equal(selected.model.name, 'tiny-code-lm', 'a model is named by its folder, not model.onnx');
    assert.match(selected.model.detail, /set in Workspace settings/);
    await runOk('fedkseed.selectDataset', join(repo(), 'test', 'fixtures', 'data', 'dolly.jsonl'));
    assert.match(api.setup().data?.detail ?? '', /JSONL\/JSON dataset/);
    await configure({ 'model.path': '', 'data.path': join(repo(), 'trainer', 'data') });
  });
});
