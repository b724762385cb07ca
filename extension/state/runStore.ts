// The single source of what the UI shows: the trainer's status, the local server's status and the
// run's chart series. The trainer controller writes it; the sidebar, dashboard and status bar read it.
import * as vscode from 'vscode';
import type { Evaluation, RoundCompleted, SeedProbabilities, StepsNotification, TrainerStatus } from '../../contracts/trainer-rpc';
import { emptyHistory, idleViewStatus, type LocalServerStatus, type RunHistory, type ViewStatus } from '../../contracts/webview-messages';

/** Step-loss points kept; beyond this, neighbours are averaged pairwise so the curve keeps its shape. */
const MAX_STEP_POINTS = 2000;

function halve(points: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i + 1 < points.length; i += 2) out.push([points[i + 1]![0], (points[i]![1] + points[i + 1]![1]) / 2]);
  if (points.length % 2 === 1) out.push(points[points.length - 1]!);
  return out;
}

export class RunStore implements vscode.Disposable {
  private currentStatus: ViewStatus = idleViewStatus;
  private currentHistory: RunHistory = { ...emptyHistory };
  private readonly statusChanged = new vscode.EventEmitter<ViewStatus>();
  private readonly historyChanged = new vscode.EventEmitter<RunHistory>();
  readonly onDidChangeStatus = this.statusChanged.event;
  readonly onDidChangeHistory = this.historyChanged.event;

  get status(): ViewStatus {
    return this.currentStatus;
  }

  get history(): RunHistory {
    return this.currentHistory;
  }

  setTrainer(trainer: TrainerStatus): void {
    this.setStatus({ ...this.currentStatus, trainer });
  }

  setLocalServer(localServer: LocalServerStatus | null): void {
    this.setStatus({ ...this.currentStatus, localServer });
  }

  setModel(model: string | null): void {
    this.setStatus({ ...this.currentStatus, model });
  }

  /** A new run starts with empty charts. */
  clearHistory(): void {
    this.currentHistory = { ...emptyHistory };
    this.historyChanged.fire(this.currentHistory);
  }

  addSteps(batch: StepsNotification): void {
    let stepLoss = [...this.currentHistory.stepLoss, ...batch.points.map((p): [number, number] => [p.step, p.loss])];
    while (stepLoss.length > MAX_STEP_POINTS) stepLoss = halve(stepLoss);
    this.setHistory({ stepLoss });
  }

  addEvaluation(e: Evaluation): void {
    this.setHistory({ heldOut: [...this.currentHistory.heldOut, [e.step, e.heldOutLoss]] });
  }

  addRound(r: RoundCompleted): void {
    const rounds = this.currentHistory.rounds.filter((x) => x.round !== r.round);
    rounds.push({ round: r.round, up: r.bytesUp, down: r.bytesDown, fedAvg: r.fedAvgBytes });
    this.setHistory({ rounds });
  }

  setSeeds(seeds: SeedProbabilities): void {
    this.setHistory({ seeds });
  }

  dispose(): void {
    this.statusChanged.dispose();
    this.historyChanged.dispose();
  }

  private setStatus(status: ViewStatus): void {
    this.currentStatus = status;
    this.statusChanged.fire(status);
  }

  private setHistory(patch: Partial<RunHistory>): void {
    this.currentHistory = { ...this.currentHistory, ...patch };
    this.historyChanged.fire(this.currentHistory);
  }
}
