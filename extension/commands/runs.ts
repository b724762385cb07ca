// The run history's commands: open a past run in the dashboard, compare two runs' loss curves, remove
// a run (its record and checkpoint), load a run's fine-tuned weights into the trainer, and resume a run
// the window took down (a reload resumes it at once, an older one is offered).
import * as vscode from 'vscode';
import { runKeyFigures } from '../../contracts/run-figures';
import type { RunRecord, RunSummary } from '../../contracts/runs';
import { describeWeights, type FederationResult, type TrainingResult, type WeightsState } from '../../contracts/trainer-rpc';
import { UserFacingError } from '../errors';
import { showInfo } from './messages';
import { withRunProgress, type TrainingCommandDeps } from './training';

type RunPick = vscode.QuickPickItem & { readonly id: string };

function runItem(run: RunSummary, deps: TrainingCommandDeps): RunPick {
  const record = deps.store.recordOf(run.id);
  return {
    label: run.title,
    description: new Date(run.startedAt).toLocaleString(),
    detail: `${run.state} · ${runKeyFigures(run, record?.history)}`,
    id: run.id,
  };
}

async function pickRun(deps: TrainingCommandDeps, title: string, filter: (r: RunSummary) => boolean = () => true): Promise<string | undefined> {
  const items = deps.store.summaries.filter(filter).map((r) => runItem(r, deps));
  if (items.length === 0) throw new UserFacingError('there are no runs yet: start training or join a federation');
  return (await vscode.window.showQuickPick(items, { title, matchOnDetail: true }))?.id;
}

/** Shows a run in the dashboard (`null`: back to the run in progress). */
export async function openRun(deps: TrainingCommandDeps, arg: unknown): Promise<string | null | undefined> {
  const id = arg === null ? null : typeof arg === 'string' ? arg : await pickRun(deps, 'Open which run in the dashboard?');
  if (id === undefined) return undefined;
  deps.store.show(id);
  deps.dashboard.show();
  return id;
}

/** Two runs' curves on one chart: `[shown, compared]`, `[compared]` (against the run shown), or `null` to stop comparing. */
export async function compareRuns(deps: TrainingCommandDeps, arg: unknown): Promise<string[] | null | undefined> {
  if (arg === null) {
    deps.store.compare(null);
    return null;
  }
  let ids = Array.isArray(arg) && arg.every((x) => typeof x === 'string') ? (arg as string[]) : undefined;
  if (!ids) {
    const items = deps.store.summaries.filter((r) => r.kind !== 'evaluation').map((r) => runItem(r, deps));
    if (items.length < 2) throw new UserFacingError('comparing needs two runs');
    const picked = await vscode.window.showQuickPick(items, { title: 'Compare which two runs?', canPickMany: true, matchOnDetail: true });
    if (!picked) return undefined;
    if (picked.length !== 2) throw new UserFacingError(`pick two runs to compare, not ${picked.length}`);
    ids = picked.map((p) => p.id);
  }
  if (ids.length === 2) {
    deps.store.show(ids[0]!);
    deps.store.compare(ids[1]!);
  } else if (ids.length === 1) {
    deps.store.compare(ids[0]!);
  } else {
    throw new UserFacingError('compare takes one or two runs');
  }
  deps.dashboard.show();
  return ids;
}

/** Removes a run and its checkpoint; `{ runId, confirm: true }` asks first (the sidebar's button). */
export async function removeRun(deps: TrainingCommandDeps, arg: unknown): Promise<boolean> {
  let id: string | undefined;
  let confirm = false;
  if (typeof arg === 'string') id = arg;
  else if (arg && typeof arg === 'object' && 'runId' in arg && typeof (arg as { runId: unknown }).runId === 'string') {
    id = (arg as { runId: string }).runId;
    confirm = (arg as { confirm?: unknown }).confirm === true;
  } else {
    id = await pickRun(deps, 'Remove which run?');
    confirm = true;
  }
  if (!id) return false;
  const run = deps.store.recordOf(id);
  if (!run) throw new UserFacingError(`there is no run ${id}`);
  if (confirm) {
    const choice = await vscode.window.showWarningMessage(
      `Remove the run "${run.summary.title}" of ${new Date(run.summary.startedAt).toLocaleString()}?`,
      { modal: true, detail: 'Its charts, figures and checkpoint (its fine-tuned weights) are deleted.' },
      'Remove',
    );
    if (choice !== 'Remove') return false;
  }
  return deps.store.remove(id);
}

/** Makes the trainer hold a run's fine-tuned weights (for Evaluate and Export), or the base model (`'base'`). */
export async function loadRunWeights(deps: TrainingCommandDeps, arg: unknown): Promise<WeightsState | undefined> {
  let id = typeof arg === 'string' ? arg : undefined;
  if (!id) {
    const runs = deps.store.summaries.filter((r) => r.checkpoint && r.kind !== 'evaluation').map((r) => runItem(r, deps));
    const items: RunPick[] = [...runs, { label: 'Base model', detail: 'the model as it is, not fine-tuned', id: 'base' }];
    id = (await vscode.window.showQuickPick(items, { title: 'Load which fine-tuned weights into the trainer?', matchOnDetail: true }))?.id;
    if (!id) return undefined;
  }
  const weights = await deps.controller.loadRunWeights(id);
  void showInfo(`FedKSeed: the trainer now holds ${weights.kind === 'base' ? describeWeights(weights) : `the model ${deps.store.weightsText(weights)}`}.`);
  return weights;
}

/** Where an interrupted run stood, and where its checkpoint lets it resume: "step 23 of 40" / "round 3 of 10". */
function whereText(record: RunRecord, at: { steps: number; round: number } | undefined): { was: string; from: string } {
  const s = record.summary;
  if (s.kind === 'local') return { was: `step ${s.step} of ${s.steps}`, from: at ? `its checkpoint at step ${at.steps}` : 'step 0 (it had no checkpoint yet)' };
  return {
    was: `round ${s.committedRound + 1} of ${s.rounds || '?'}`,
    from: at ? `its checkpoint at round ${at.round}` : 'round 0 (it had no checkpoint yet)',
  };
}

/** Resumes an interrupted run from its checkpoint. */
export async function resumeRun(deps: TrainingCommandDeps, arg: unknown): Promise<TrainingResult | FederationResult | undefined> {
  let record = typeof arg === 'string' ? deps.store.recordOf(arg) : deps.controller.interruptedRun()?.record;
  if (!record && arg === undefined) {
    const id = await pickRun(deps, 'Resume which run?', (r) => r.state === 'interrupted');
    record = id ? deps.store.recordOf(id) : undefined;
  }
  if (!record) throw new UserFacingError('there is no interrupted run to resume');
  const title = record.summary.kind === 'local' ? 'FedKSeed: training (resumed)' : `FedKSeed: federation at ${record.summary.server ?? '?'} (resumed)`;
  const result = await withRunProgress(title, deps.store, (token) => deps.controller.resumeRun(record, token));
  void showInfo(
    'totalSteps' in result
      ? `FedKSeed: the resumed training ${result.stopped ? 'stopped' : 'finished'} after ${result.totalSteps} steps.`
      : `FedKSeed: the resumed federation ${result.stopped ? 'was left' : 'finished'} after round ${result.finalRound}.`,
  );
  return result;
}

/**
 * On activation: a run this window's reload took down is resumed from its checkpoint at once, and the
 * user is told; an older interruption is offered (Resume / Dismiss).
 */
export function resumeInterruptedRun(deps: TrainingCommandDeps): void {
  const found = deps.controller.interruptedRun();
  if (!found) return;
  const { record, ask } = found;
  const { was, from } = whereText(record, deps.controller.checkpointOf(record.summary.id));
  const id = record.summary.id;
  if (!ask) {
    deps.log.info(`the window reloaded during "${record.summary.title}" (${was}); resuming it from ${from}`);
    void showInfo(`FedKSeed: the window reloaded during ${record.summary.title} (${was}); the run resumed from ${from}.`);
    void vscode.commands.executeCommand('fedkseed.resumeRun', id);
    return;
  }
  const when = new Date(record.summary.interruptedAt ?? record.summary.startedAt).toLocaleString();
  void showInfo(`FedKSeed: ${record.summary.title} was interrupted at ${was} (${when}). Resume it from ${from}?`, 'Resume', 'Dismiss').then((choice) => {
    if (choice === 'Resume') void vscode.commands.executeCommand('fedkseed.resumeRun', id);
    else if (choice === 'Dismiss') deps.store.dismissInterrupted(id);
  });
}
