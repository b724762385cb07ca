// Training, evaluation and export commands: each long one runs under a cancellable progress
// notification that follows the trainer's status.
import { join } from 'node:path';
import * as vscode from 'vscode';
import { heldOutChange, type EvaluateResult, type ExportModelResult, type TrainingResult } from '../../contracts/trainer-rpc';
import type { RunStore } from '../state/runStore';
import { UserFacingError, type TrainingController } from '../processes/trainingController';
import { pathArgument } from './outcome';

export interface TrainingCommandDeps {
  controller: TrainingController;
  store: RunStore;
}

/** Runs `work` under a progress notification whose message follows the run's status. */
export function withRunProgress<T>(
  title: string,
  store: RunStore,
  work: (token: vscode.CancellationToken) => Promise<T>,
): Thenable<T> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, (progress, token) => {
    let last = 0;
    const follow = store.onDidChangeStatus(({ trainer }) => {
      const fraction = trainer.mode === 'federation' ? trainer.round / Math.max(1, trainer.rounds) : trainer.step / Math.max(1, trainer.steps);
      const percent = Math.min(100, Math.round(fraction * 100));
      progress.report({ message: trainer.detail ?? undefined, increment: percent > last ? percent - last : undefined });
      last = Math.max(last, percent);
    });
    return work(token).finally(() => follow.dispose());
  });
}

export async function startTraining({ controller, store }: TrainingCommandDeps): Promise<TrainingResult> {
  const result = await withRunProgress('FedKSeed: training', store, (token) => controller.startTraining(token));
  const verb = result.stopped ? 'stopped' : 'finished';
  void vscode.window.showInformationMessage(
    `FedKSeed: training ${verb} after ${result.stepsRun} steps; ${heldOutChange(result)}.`,
  );
  return result;
}

export async function stopTraining({ controller }: TrainingCommandDeps): Promise<boolean> {
  return controller.stop();
}

export async function evaluateModel({ controller, store }: TrainingCommandDeps): Promise<EvaluateResult> {
  const result = await withRunProgress('FedKSeed: evaluating', store, (token) => controller.evaluate(token));
  void vscode.window.showInformationMessage(
    `FedKSeed: loss ${result.loss.toFixed(4)} (perplexity ${result.perplexity.toFixed(2)}) over ${result.examples} examples, ${result.tokens} tokens.`,
  );
  return result;
}

export async function exportModel({ controller }: TrainingCommandDeps, arg: unknown): Promise<ExportModelResult | undefined> {
  let out = pathArgument(arg);
  if (!out) {
    const root = vscode.workspace.workspaceFolders?.[0]?.uri;
    const picked = await vscode.window.showSaveDialog({
      title: 'Export the fine-tuned model as ONNX',
      defaultUri: root ? vscode.Uri.joinPath(root, 'fine-tuned', 'model.onnx') : undefined,
      filters: { 'ONNX model': ['onnx'] },
      saveLabel: 'Export',
    });
    if (!picked) return undefined;
    out = picked.fsPath;
  }
  if (!out.endsWith('.onnx')) throw new UserFacingError(`the exported model must be an .onnx file, not ${out}`);
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `FedKSeed: exporting to ${out}` },
    () => controller.exportModel(out),
  );
  const extra = result.copied.length > 0 ? ` (with ${result.copied.join(', ')})` : '';
  void vscode.window.showInformationMessage(`FedKSeed: exported ${join(result.path)}${extra}.`);
  return result;
}
