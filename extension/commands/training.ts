// Training, evaluation and export commands: each long one runs under a cancellable progress
// notification that follows the run's figures. Results name the weights they concern: Evaluate says
// which model it scored, Export which model it wrote (and never calls the base model fine-tuned).
import * as vscode from 'vscode';
import { formatLoss } from '../../protocol/format';
import { heldOutChange, type EvaluateResult, type ExportModelResult, type TrainingResult, type WeightsState } from '../../contracts/trainer-rpc';
import type { RunStore } from '../state/runStore';
import { UserFacingError } from '../errors';
import type { TrainingController } from '../processes/trainingController';
import type { DashboardPanelManager } from '../views/dashboardPanel';
import { showInfo } from './messages';
import { pathArgument } from './outcome';
import { ignoreScratchFolder, WORK_FOLDER } from '../../contracts/node/scratch-folder';

export interface TrainingCommandDeps {
  controller: TrainingController;
  store: RunStore;
  dashboard: DashboardPanelManager;
  log: vscode.LogOutputChannel;
}

/** Runs `work` under a progress notification whose message follows the run's figures. */
export function withRunProgress<T>(title: string, store: RunStore, work: (token: vscode.CancellationToken) => Promise<T>): Thenable<T> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, (progress, token) => {
    let last = 0;
    const follow = store.onDidChangeStatus(({ trainer, figures }) => {
      const percent = Math.min(100, Math.round((figures.progress.fraction ?? 0) * 100));
      const message =
        trainer.state === 'stopping'
          ? 'Stopping…'
          : trainer.state === 'training' || trainer.state === 'connected'
            ? figures.text.progress
            : (trainer.detail ?? undefined);
      progress.report({ message, increment: percent > last ? percent - last : undefined });
      last = Math.max(last, percent);
    });
    return work(token).finally(() => follow.dispose());
  });
}

export async function startTraining({ controller, store }: TrainingCommandDeps): Promise<TrainingResult> {
  const result = await withRunProgress('FedKSeed: training', store, (token) => controller.startTraining(token));
  const verb = result.stopped ? 'stopped' : 'finished';
  void showInfo(`FedKSeed: training ${verb} after ${result.totalSteps} steps; ${heldOutChange(result)}.`);
  return result;
}

export async function stopTraining({ controller }: TrainingCommandDeps): Promise<boolean> {
  return controller.stop();
}

/** ", top-1 accuracy 14.5%, next-line exact match 11.4%": the measures a person can read, when there are any. */
function measures(r: EvaluateResult): string {
  const percent = (x: number) => `${(100 * x).toFixed(1)}%`;
  const accuracy = typeof r.accuracy === 'number' ? `, top-1 accuracy ${percent(r.accuracy)}` : '';
  const generation =
    typeof r.generation === 'number' ? `, ${r.generationMetric === 'rougeL' ? 'Rouge-L' : 'next-line exact match'} ${percent(r.generation)}` : '';
  return accuracy + generation;
}

/**
 * The run shown in the dashboard, opened from the history, is the one Export and Evaluate are about:
 * its weights are loaded from its checkpoint first (the weights the trainer held are another run's).
 * Returns the note the result's message carries.
 */
async function loadShownRun({ controller, store, log }: TrainingCommandDeps): Promise<string> {
  const run = store.shownRunToLoad();
  if (!run) return '';
  const weights = await controller.loadRunWeights(run.id);
  log.info(`loaded the weights of "${run.title}" (${store.weightsText(weights)}), the run shown in the dashboard`);
  return ', the run shown in the dashboard';
}

export async function evaluateModel(deps: TrainingCommandDeps): Promise<EvaluateResult> {
  const { controller, store, dashboard, log } = deps;
  const shown = await loadShownRun(deps);
  const result = await withRunProgress('FedKSeed: evaluating on the held-out split', store, (token) => controller.evaluate(token));
  const model = store.weightsText(result.weights);
  log.info(
    `Evaluate: held-out loss ${formatLoss(result.loss)}, perplexity ${result.perplexity.toFixed(2)}${measures(result)}, on ${result.examples} of ${result.heldOutExamples} held-out examples (${result.tokens} tokens); model: ${store.status.model ?? '?'}, ${model}`,
  );
  // Short enough to read whole in a notification; the details are in the log and the dashboard.
  void showInfo(
    `FedKSeed: held-out loss ${formatLoss(result.loss)} (perplexity ${result.perplexity.toFixed(2)}) for ${model.replace(/ \(.*\)$/, '')}${shown ? ` (${store.weightsLabel(result.weights)}${shown})` : ''}.`,
    'Show Details',
  ).then((choice) => {
    if (choice !== 'Show Details') return;
    const runId = result.weights.runId ?? store.summaries.find((r) => r.kind === 'evaluation')?.id ?? null;
    if (runId) store.show(runId);
    dashboard.show();
  });
  return result;
}

/** FedKSeed's working folder in a workspace: exports go there, out of the data (the data reader skips it) and out of git. */

/**
 * Where Export proposes to write: `<workspace>/.fedkseed/exports/<weights>/model.onnx`, never inside the
 * workspace's own files, which are the default dataset (a model's tokenizer.json there became training data).
 */
export function proposedExport(weights: WeightsState | null): vscode.Uri | undefined {
  const root = vscode.workspace.workspaceFolders?.[0]?.uri;
  if (!root) return undefined;
  const run = weights?.runId ? weights.runId.replace(/-[0-9a-f]+$/, '') : null;
  const name =
    !weights || weights.kind === 'base'
      ? 'base-model'
      : `${weights.kind === 'federation' ? `federation-round-${weights.round}` : `local-step-${weights.steps}`}${run ? `-${run}` : ''}`;
  return vscode.Uri.joinPath(root, WORK_FOLDER, 'exports', name, 'model.onnx');
}

/** `{ out, base: true }` exports the base model without asking; a path alone exports whatever is loaded. */
function exportArgument(arg: unknown): { out: string | undefined; allowBase: boolean } {
  if (arg && typeof arg === 'object' && !(arg instanceof vscode.Uri) && 'out' in arg) {
    const o = arg as { out?: unknown; base?: unknown };
    return { out: typeof o.out === 'string' ? o.out : undefined, allowBase: o.base === true };
  }
  const out = pathArgument(arg);
  return { out, allowBase: out !== undefined };
}

export async function exportModel(deps: TrainingCommandDeps, arg: unknown): Promise<ExportModelResult | undefined> {
  const { controller, store } = deps;
  let { out } = exportArgument(arg);
  const { allowBase } = exportArgument(arg);
  const shown = await loadShownRun(deps);
  const weights = controller.currentWeights;
  if (!allowBase && (!weights || weights.kind === 'base')) {
    // Never export the base model under the fine-tuned label: say so, and offer the runs' weights.
    const withCheckpoints = store.summaries.filter((r) => r.checkpoint && r.kind !== 'evaluation');
    const choice = await vscode.window.showWarningMessage(
      'No fine-tuned weights are loaded: the trainer holds the base model.',
      {
        modal: true,
        detail:
          withCheckpoints.length > 0
            ? "Load a run's fine-tuned weights first, or export the base model as it is."
            : 'Train or join a federation first, or export the base model as it is.',
      },
      ...(withCheckpoints.length > 0 ? ['Load Run Weights…'] : []),
      'Export Base Model',
    );
    if (choice === 'Load Run Weights…') {
      await vscode.commands.executeCommand('fedkseed.loadRunWeights');
      if (controller.currentWeights?.kind === 'base' || !controller.currentWeights) return undefined;
    } else if (choice !== 'Export Base Model') {
      return undefined;
    }
  }
  const what = controller.currentWeights ? store.weightsText(controller.currentWeights) : 'the model';
  if (!out) {
    const base = controller.currentWeights?.kind === 'base';
    const picked = await vscode.window.showSaveDialog({
      title: `Export ${base ? 'the base model (not fine-tuned)' : `the model ${what}`} as ONNX`,
      defaultUri: proposedExport(controller.currentWeights),
      filters: { 'ONNX model': ['onnx'] },
      saveLabel: 'Export',
    });
    if (!picked) return undefined;
    out = picked.fsPath;
  }
  if (!out.endsWith('.onnx')) throw new UserFacingError(`the exported model must be an .onnx file, not ${out}`);
  ignoreScratchFolder(out);
  const target = out;
  const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `FedKSeed: exporting to ${target}` }, () =>
    controller.exportModel(target),
  );
  const extra = result.copied.length > 0 ? ` (with ${result.copied.join(', ')})` : '';
  const written = result.weights.kind === 'base' ? 'the base model (not fine-tuned)' : `the model ${store.weightsText(result.weights)}${shown}`;
  void showInfo(`FedKSeed: exported ${written} to ${result.path}${extra}.`);
  return result;
}
