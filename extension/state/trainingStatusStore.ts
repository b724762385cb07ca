// The single source of the training status the UI shows; the trainer supervisor writes it,
// the sidebar and dashboard subscribe to it.
import * as vscode from 'vscode';
import { idleStatus, type TrainingStatus } from '../../webview/shared/messages';

export class TrainingStatusStore implements vscode.Disposable {
  private current: TrainingStatus = idleStatus;
  private readonly changed = new vscode.EventEmitter<TrainingStatus>();
  readonly onDidChange = this.changed.event;

  get status(): TrainingStatus {
    return this.current;
  }

  update(status: TrainingStatus): void {
    this.current = status;
    this.changed.fire(status);
  }

  dispose(): void {
    this.changed.dispose();
  }
}
