// What a careful user relies on: trained weights are never lost silently, every figure has one source,
// a failed connection says why and what to do, Evaluate scores the held-out split and is recorded,
// errors name their setting and scope, runs are kept, and the settings show where users look for them.
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { FedKSeedApi } from '../../../extension/api';
import type { EvaluateResult, ExportModelResult, FederationResult, TrainingResult } from '../../../contracts/trainer-rpc';
import type { CommandOutcome } from '../../../extension/commands/outcome';
import { configure, quickRunSettings, ourExtension, run, runOk, waitFor } from './helpers';

/** A failed command's outcome, with the actions its error message offered. */
async function failure(command: string, arg?: unknown): Promise<{ error: string; actions: readonly string[] }> {
  const outcome: CommandOutcome<unknown> = await run(command, arg);
  if (outcome.ok) throw new Error(`${command} succeeded but was expected to fail`);
  return { error: outcome.error, actions: outcome.actions ?? [] };
}

interface Property {
  type?: string;
  scope?: string;
  order?: number;
  enum?: unknown[];
  enumDescriptions?: string[];
  markdownEnumDescriptions?: string[];
}

describe('trust', function () {
  this.timeout(120_000);
  let api: FedKSeedApi;
  let scratch: string;
  const repo = () => ourExtension().extensionPath;

  before(async () => {
    api = await ourExtension().activate();
    scratch = mkdtempSync(join(tmpdir(), 'fedkseed-trust-'));
    await configure({ ...quickRunSettings(), 'data.heldOutFraction': 0.1 });
  });

  after(async () => {
    await vscode.commands.executeCommand('fedkseed.stopTraining');
    await vscode.commands.executeCommand('fedkseed.stopLocalServer');
    await configure({ 'engine.threads': 1, 'data.heldOutFraction': 0.1 });
    rmSync(scratch, { recursive: true, force: true });
  });

  it('a federation replica survives a trainer restart: Export says which model it writes, and it is the trained one', async () => {
    const federation = await runOk<FederationResult>('fedkseed.startLocalFederation');
    assert.equal(federation.finalRound, 2);
    assert.deepEqual({ kind: federation.weights.kind, round: federation.weights.round }, { kind: 'federation', round: 2 });
    const trained = await runOk<EvaluateResult>('fedkseed.evaluateModel');
    await runOk('fedkseed.stopLocalServer');

    // An engine setting restarts the trainer: the replica must come back from its checkpoint.
    const pid = api.trainerPid();
    await configure({ 'engine.threads': 2 });
    await waitFor('the trainer to stop for the new engine settings', () => (api.trainerPid() !== pid ? true : undefined));
    const exported = await runOk<ExportModelResult>('fedkseed.exportModel', join(scratch, 'federated', 'model.onnx'));
    assert.equal(exported.weights.kind, 'federation');
    assert.equal(exported.weights.round, 2);
    assert.equal(exported.weights.restored, true, 'the weights were reloaded from the run checkpoint');
    const again = await runOk<EvaluateResult>('fedkseed.evaluateModel');
    assert.equal(again.loss, trained.loss, 'the restored replica is the trained one, bit for bit');
    assert.equal(api.status().weights?.kind, 'federation');
  });

  it('Export of the base model is labelled base, never fine-tuned', async () => {
    await runOk('fedkseed.loadRunWeights', 'base');
    const exported = await runOk<ExportModelResult>('fedkseed.exportModel', join(scratch, 'base', 'model.onnx'));
    assert.equal(exported.weights.kind, 'base');
    assert.match(api.lastMessage() ?? '', /base model/i);
    assert.doesNotMatch(api.lastMessage() ?? '', /fine-tuned model/i);
  });

  it('a local run is checkpointed and reloaded after a trainer crash', async () => {
    const result = await runOk<TrainingResult>('fedkseed.startTraining');
    assert.equal(result.weights.kind, 'local');
    assert.equal(result.weights.steps, 6);
    const runs = api.runs();
    assert.ok(runs[0] && runs[0].kind === 'local' && runs[0].checkpoint, 'the run is listed with its checkpoint');
    const pid = api.trainerPid();
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    await waitFor(
      'a restarted trainer',
      () => {
        const now = api.trainerPid();
        return now !== undefined && now !== pid ? true : undefined;
      },
      30_000,
    );
    await waitFor('the checkpoint to be reloaded', () => (api.status().weights?.restored ? true : undefined), 30_000);
    const exported = await runOk<ExportModelResult>('fedkseed.exportModel', join(scratch, 'local', 'model.onnx'));
    assert.deepEqual(
      { kind: exported.weights.kind, steps: exported.weights.steps, restored: exported.weights.restored },
      { kind: 'local', steps: 6, restored: true },
    );
  });

  it('Evaluate scores the held-out split of the training rule, names the model it scored and is recorded with the run', async () => {
    const trained = await runOk<TrainingResult>('fedkseed.startTraining');
    const evaluated = await runOk<EvaluateResult>('fedkseed.evaluateModel');
    assert.ok(evaluated.heldOutExamples > 0);
    assert.equal(evaluated.loss, trained.heldOutAfter, "the same held-out examples and weights as the run's final evaluation");
    assert.equal(evaluated.weights.kind, 'local');
    assert.match(api.lastMessage() ?? '', /held-out/);
    assert.match(api.lastMessage() ?? '', /fine-tuned after step 6/);
    const recorded = api.runs()[0]!;
    assert.equal(recorded.evaluations.length, 1);
    assert.equal(recorded.evaluations[0]!.loss, evaluated.loss);

    await configure({ 'data.heldOutFraction': 0 });
    const refused = await failure('fedkseed.evaluateModel');
    assert.match(refused.error, /fedkseed\.data\.heldOutFraction/);
    assert.ok(refused.actions.includes('Open Setting'), `actions: ${refused.actions.join(', ')}`);
    await configure({ 'data.heldOutFraction': 0.1 });
  });

  it("with training.keep best, a run leaves its best evaluated point: the weights held, their step and Evaluate's loss", async () => {
    await configure({ 'training.keep': 'best', 'training.steps': 9, 'training.evalEvery': 3 });
    try {
      const trained = await runOk<TrainingResult>('fedkseed.startTraining');
      const best = trained.best;
      if (best) {
        // The best was an earlier point: those are the weights held, named by their step.
        assert.ok(best.loss <= (trained.heldOutAfter as number) && best.loss <= (trained.heldOutBefore as number), JSON.stringify(trained));
        assert.equal(trained.weights.steps, best.step);
        const evaluated = await runOk<EvaluateResult>('fedkseed.evaluateModel');
        assert.ok(Math.abs(evaluated.loss - best.loss) < 1e-4, `Evaluate ${evaluated.loss} vs the best ${best.loss}`);
      } else {
        // The last step was the best: nothing else to keep.
        assert.equal(trained.weights.steps, 9);
        assert.ok((trained.heldOutAfter as number) <= (trained.heldOutBefore as number));
      }
    } finally {
      await configure({ 'training.keep': 'last', 'training.steps': 6 });
    }
  });

  it('a missing model names its setting and scope and offers Select Model… and Open Setting', async () => {
    const missing = join(scratch, 'gone', 'model.onnx');
    await configure({ 'model.path': missing });
    await waitFor('the trainer to stop for the new model', () => (api.trainerPid() === undefined ? true : undefined));
    const refused = await failure('fedkseed.evaluateModel');
    assert.match(refused.error, /model file not found/);
    assert.match(refused.error, /fedkseed\.model\.path/);
    assert.match(refused.error, /Workspace settings/);
    assert.ok(refused.actions.includes('Select Model…') && refused.actions.includes('Open Setting'), `actions: ${refused.actions.join(', ')}`);
    await configure({ 'model.path': '' });
  });

  it('an unreachable server fails with its cause after a few tries, offers a way out and keeps the previous charts', async () => {
    const before = JSON.stringify(api.history());
    assert.ok(api.history().stepLoss.length > 0, 'a previous run has charts');
    const started = Date.now();
    const refused = await failure('fedkseed.connectFederation', 'ws://127.0.0.1:1');
    assert.ok(Date.now() - started < 30_000, `gave up after ${Date.now() - started} ms`);
    assert.match(refused.error, /refused/i);
    assert.ok(refused.actions.includes('Open Setting') && refused.actions.includes('Retry'), `actions: ${refused.actions.join(', ')}`);
    assert.equal(api.status().trainer.state, 'error');
    assert.equal(JSON.stringify(api.history()), before, "the previous run's charts are kept");
  });

  it("every figure has one source: per-round bytes equal the server's count; sidebar, dashboard and status bar agree", async () => {
    await runOk<FederationResult>('fedkseed.startLocalFederation');
    const server = api
      .serverEvents()
      .filter((e) => e.event === 'roundCommitted')
      .slice(-2);
    const rounds = api.history().rounds;
    assert.equal(rounds.length, 2);
    for (const r of rounds) {
      const committed = server.find((e) => e.round === r.round);
      assert.ok(committed, `the server committed round ${r.round}`);
      assert.equal(r.up + r.down, Number(/(\d+) bytes/.exec(committed.detail)?.[1]), `round ${r.round}: the client counts what the server counts`);
    }
    const { figures } = api.status();
    const view = api.dashboardView();
    assert.equal(view.figures.text.ratio, figures.text.ratio);
    assert.equal(
      view.figures.bytes.rounds,
      rounds.reduce((n, r) => n + r.up + r.down, 0),
    );
    assert.match(api.statusBarText(), new RegExp(figures.text.lastRound.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.equal(api.status().localServer?.committed, figures.rounds.committed);
    await runOk('fedkseed.stopLocalServer');
  });

  it('progress reads n/N with a time estimate; Stop shows Stopping… at once', async () => {
    await configure({ 'training.steps': 100000 });
    const training = run<TrainingResult>('fedkseed.startTraining');
    await waitFor('a time estimate', () => (api.status().trainer.step > 3 && api.status().figures.progress.etaSeconds !== null ? true : undefined), 60_000);
    assert.match(api.status().figures.text.progress, /^\d+\/100,000 · ~.* left$/);
    const stopping = vscode.commands.executeCommand('fedkseed.stopTraining');
    assert.equal(api.status().trainer.state, 'stopping');
    await stopping;
    await training;
    await configure({ 'training.steps': 6 });
  });

  it('runs are listed, re-openable in the dashboard, comparable and removable', async () => {
    const runs = api.runs();
    assert.ok(runs.length >= 3, `${runs.length} runs`);
    for (const r of runs)
      assert.ok(['finished', 'stopped', 'failed'].includes(r.state), `${r.title} of ${new Date(r.startedAt).toISOString()} is listed as ${r.state}`);
    const stopped = runs.find((r) => r.kind === 'local' && r.state === 'stopped');
    assert.ok(stopped && stopped.step > 3, `the stopped local run keeps its steps: ${stopped?.step}`);
    const [a, b] = [runs[1]!, runs[2]!];
    await runOk('fedkseed.openRun', a.id);
    assert.equal(api.dashboardView().run?.id, a.id);
    await runOk('fedkseed.compareRuns', [a.id, b.id]);
    assert.equal(api.dashboardView().compare?.run.id, b.id);
    assert.ok((api.dashboardView().compare?.history.stepLoss.length ?? 0) > 0);
    const folder = api.runFolder(b.id);
    assert.ok(existsSync(folder));
    await runOk('fedkseed.removeRun', b.id);
    assert.ok(!api.runs().some((r) => r.id === b.id));
    assert.ok(!existsSync(folder), 'its folder and checkpoint are removed');
    assert.equal(api.dashboardView().compare, null);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it("a federation left midway resumes from its checkpoint: it rejoins at the checkpoint's round and finishes with every round once", async () => {
    await configure({ 'localServer.rounds': 4 });
    try {
      const federation = run<FederationResult>('fedkseed.startLocalFederation');
      await waitFor('two committed rounds', () => (api.status().figures.rounds.committed >= 2 ? true : undefined), 60_000);
      await runOk('fedkseed.stopTraining');
      const left = await federation;
      assert.ok(left.ok && left.value.stopped);
      const id = api.runs()[0]!.id;
      const checkpoint = JSON.parse(readFileSync(join(api.runFolder(id), 'checkpoint.json'), 'utf8')) as { round: number };
      assert.ok(checkpoint.round >= 1, `checkpoint at round ${checkpoint.round}`);
      const joinedAt: number[] = [];
      const watch = api.onDidChangeStatus((s) => {
        if (s.trainer.state === 'connected' && joinedAt.length === 0) joinedAt.push(s.trainer.committedRound ?? 0);
      });
      const resumed = await runOk<FederationResult>('fedkseed.resumeRun', id).finally(() => watch.dispose());
      assert.equal(resumed.finalRound, 4);
      assert.equal(joinedAt[0], checkpoint.round, "the rejoin starts from the checkpoint's round");
      assert.equal(api.runs()[0]!.id, id, 'the same run continues');
      assert.deepEqual(
        api.history().rounds.map((r) => r.round),
        [1, 2, 3, 4],
      );
      assert.deepEqual({ kind: resumed.weights.kind, round: resumed.weights.round }, { kind: 'federation', round: 4 });
    } finally {
      await runOk('fedkseed.stopLocalServer');
      await configure({ 'localServer.rounds': 2 });
    }
  });

  it("settings: paths show in a remote window's User tab, server URL and model come first, every enum value is described", () => {
    const manifest = JSON.parse(readFileSync(join(repo(), 'package.json'), 'utf8')) as {
      contributes: { configuration: { properties: Record<string, Property> } };
    };
    const properties = manifest.contributes.configuration.properties;
    for (const [key, p] of Object.entries(properties)) {
      assert.ok(p.scope !== 'machine' && p.scope !== 'machine-overridable', `${key} has scope ${p.scope}, hidden from a remote window's User settings`);
      assert.equal(typeof p.order, 'number', `${key} has no order`);
      if (p.enum) assert.equal((p.enumDescriptions ?? p.markdownEnumDescriptions)?.length, p.enum.length, `${key} does not describe every value`);
    }
    const ordered = Object.entries(properties)
      .sort(([, x], [, y]) => (x.order ?? 0) - (y.order ?? 0))
      .map(([key]) => key);
    assert.deepEqual(ordered.slice(0, 2), ['fedkseed.server.url', 'fedkseed.model.path']);
  });
});
