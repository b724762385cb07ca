// Every command's happy path and error path, against the real trainer process (the bundled model,
// onnxruntime-node in the extension host's Node) and a real local federation server on loopback.
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { FedKSeedApi } from '../../../extension/api';
import type { EvaluateResult, ExportModelResult, FederationResult, TrainingResult } from '../../../contracts/trainer-rpc';
import type { LocalServerAddress } from '../../../extension/processes/trainingController';
import { configure, quickRunSettings, ourExtension, run, runFails, runOk, waitFor } from './helpers';

/** Resolves once something accepts connections on the loopback port. */
async function accepting(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing accepts connections on port ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('commands', function () {
  this.timeout(90_000);
  let api: FedKSeedApi;
  let scratch: string;
  const repo = () => ourExtension().extensionPath;

  before(async () => {
    api = await ourExtension().activate();
    scratch = mkdtempSync(join(tmpdir(), 'fedkseed-commands-'));
    await configure(quickRunSettings());
  });

  after(async () => {
    await vscode.commands.executeCommand('fedkseed.stopTraining');
    await vscode.commands.executeCommand('fedkseed.stopLocalServer');
    rmSync(scratch, { recursive: true, force: true });
  });

  it('selectModel: names a missing file, accepts the bundled model', async () => {
    const missing = join(scratch, 'nowhere', 'model.onnx');
    assert.match(await runFails('fedkseed.selectModel', missing), new RegExp(`model file not found: ${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    assert.match(await runFails('fedkseed.selectModel', join(repo(), 'package.json')), /is not an \.onnx file/);
    const bundled = join(repo(), 'models', 'tiny-code-lm', 'model.onnx');
    assert.equal(await runOk('fedkseed.selectModel', bundled), bundled);
    assert.equal(vscode.workspace.getConfiguration('fedkseed').get('model.path'), bundled);
    await configure({ 'model.path': '' });
  });

  it('selectModel: takes a transformers.js repository folder (its variant stays the default), names a folder without a model', async () => {
    const repository = join(repo(), 'test', 'fixtures', 'models', 'transformersjs-gpt2');
    assert.equal(await runOk('fedkseed.selectModel', repository), repository);
    assert.equal(vscode.workspace.getConfiguration('fedkseed').get('model.path'), repository);
    assert.equal(vscode.workspace.getConfiguration('fedkseed').get('model.variant'), '');
    assert.match(await runFails('fedkseed.selectModel', scratch), /no \.onnx model in/);
    await configure({ 'model.path': '' });
  });

  it('selectDataset: names a missing path, saves an existing one', async () => {
    assert.match(await runFails('fedkseed.selectDataset', join(scratch, 'missing.jsonl')), /dataset not found: .*missing\.jsonl/);
    const data = join(repo(), 'trainer', 'data');
    assert.equal(await runOk('fedkseed.selectDataset', vscode.Uri.file(data)), data);
  });

  it('setFederationToken: stores a token, refuses an empty one', async () => {
    assert.equal(await runOk('fedkseed.setFederationToken', 'secret-token-1'), true);
    assert.match(await runFails('fedkseed.setFederationToken', '   '), /cannot be empty/);
    const inspected = vscode.workspace.getConfiguration('fedkseed').inspect('federationToken');
    assert.equal(inspected?.globalValue ?? inspected?.workspaceValue, undefined, 'the token must not be a setting');
  });

  it('evaluateModel: the bundled model gives a finite loss; a missing model file is named', async () => {
    const result = await runOk<EvaluateResult>('fedkseed.evaluateModel');
    assert.ok(Number.isFinite(result.loss) && result.loss > 0, `loss ${result.loss}`);
    assert.ok(result.examples > 0);
    assert.ok(api.trainerPid(), 'the trainer process runs');

    const missing = join(scratch, 'gone.onnx');
    await configure({ 'model.path': missing });
    await waitFor('the trainer to stop for the new model', () => (api.trainerPid() === undefined ? true : undefined));
    assert.match(await runFails('fedkseed.evaluateModel'), new RegExp(`model file not found: ${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    await configure({ 'model.path': '' });
  });

  it('startTraining: a short local run fills the status and the chart history', async () => {
    const result = await runOk<TrainingResult>('fedkseed.startTraining');
    assert.equal(result.stepsRun, 6);
    assert.equal(result.stopped, false);
    assert.ok(Number.isFinite(result.heldOutAfter));
    assert.equal(api.status().trainer.state, 'finished');
    assert.ok(api.history().stepLoss.length > 0, 'step losses recorded');
    assert.ok(api.history().heldOut.length >= 2, 'held-out losses recorded');
    assert.equal(api.history().seeds?.k, 64);
  });

  it('startTraining: a bad dataset path fails with the path named', async () => {
    await configure({ 'data.path': join(scratch, 'no-data') });
    assert.match(await runFails('fedkseed.startTraining'), /no-data/);
    await configure({ 'data.path': join(repo(), 'trainer', 'data') });
  });

  it('stopTraining: stops a running job; with nothing running it reports false', async () => {
    assert.equal(await runOk('fedkseed.stopTraining'), false);
    await configure({ 'training.steps': 100000 });
    const training = run<TrainingResult>('fedkseed.startTraining');
    await waitFor('training steps', () => (api.status().trainer.state === 'training' && api.status().trainer.step > 2 ? true : undefined), 30_000);
    assert.equal(await runOk('fedkseed.stopTraining'), true);
    const outcome = await training;
    assert.ok(outcome.ok && outcome.value.stopped, 'the run reports it was stopped');
    await configure({ 'training.steps': 6 });
  });

  it('exportModel: writes an .onnx file with its tokenizer; refuses another extension', async () => {
    const out = join(scratch, 'export', 'model.onnx');
    const result = await runOk<ExportModelResult>('fedkseed.exportModel', out);
    assert.ok(existsSync(result.path));
    assert.ok(existsSync(join(scratch, 'export', 'tokenizer.json')));
    assert.match(await runFails('fedkseed.exportModel', join(scratch, 'model.txt')), /must be an \.onnx file/);
  });

  it('start/stopLocalServer: binds 127.0.0.1; a busy port is reported', async () => {
    const started = await runOk<LocalServerAddress>('fedkseed.startLocalServer');
    assert.match(started.url, /^ws:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(api.serverPid());
    assert.equal(await runOk('fedkseed.stopLocalServer'), true);
    assert.equal(api.serverPid(), undefined);
    assert.equal(await runOk('fedkseed.stopLocalServer'), false);

    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const address = blocker.address();
    await configure({ 'localServer.port': typeof address === 'object' && address ? address.port : 0 });
    try {
      assert.match(await runFails('fedkseed.startLocalServer'), /EADDRINUSE|in use/i);
    } finally {
      blocker.close();
      await configure({ 'localServer.port': 0 });
    }
  });

  it('connectFederation: refuses a non-WebSocket URL; startLocalFederation runs every round', async () => {
    assert.match(await runFails('fedkseed.connectFederation', 'http://127.0.0.1:1'), /must start with ws:\/\/ or wss:\/\//);
    const result = await runOk<FederationResult>('fedkseed.startLocalFederation');
    assert.equal(result.finalRound, 2);
    assert.equal(api.history().rounds.length, 2);
    assert.ok(api.history().rounds.every((r) => r.up > 0 && r.down > 0 && r.fedAvg > r.up + r.down));
    assert.ok(api.status().trainer.bytes.upTotal > 0);
    await runOk('fedkseed.stopLocalServer');
  });

  it('disconnectFederation: leaves a running federation; not connected reports false', async () => {
    assert.equal(await runOk('fedkseed.disconnectFederation'), false);
    await configure({ 'localServer.rounds': 1000 });
    const federation = run<FederationResult>('fedkseed.startLocalFederation');
    await waitFor(
      'a completed round',
      () => {
        const { trainer } = api.status();
        return trainer.state !== 'finished' && trainer.rounds === 1000 && trainer.round >= 1 ? true : undefined;
      },
      60_000,
    );
    assert.equal(await runOk('fedkseed.disconnectFederation'), true);
    const outcome = await federation;
    assert.ok(outcome.ok && outcome.value.stopped);
    await runOk('fedkseed.stopLocalServer');
    await configure({ 'localServer.rounds': 2 });
  });

  it('showDashboard and showLogs run', async () => {
    await runOk('fedkseed.showDashboard');
    await runOk('fedkseed.showLogs');
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('a crashed local server is restarted on the same port', async () => {
    const started = await runOk<LocalServerAddress>('fedkseed.startLocalServer');
    const pid = api.serverPid();
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    await waitFor(
      'a new server process',
      () => {
        const now = api.serverPid();
        return now !== undefined && now !== pid ? now : undefined;
      },
      20_000,
    );
    await accepting(started.port);
    assert.deepEqual(await runOk<LocalServerAddress>('fedkseed.startLocalServer'), started);
    assert.equal(await runOk('fedkseed.stopLocalServer'), true);
  });

  it('a crashed trainer is restarted within the budget', async () => {
    await runOk('fedkseed.evaluateModel');
    const pid = api.trainerPid();
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    const restarted = await waitFor(
      'a new trainer process',
      () => {
        const now = api.trainerPid();
        return now !== undefined && now !== pid ? now : undefined;
      },
      20_000,
    );
    assert.notEqual(restarted, pid);
    await runOk('fedkseed.evaluateModel');
  });
});
