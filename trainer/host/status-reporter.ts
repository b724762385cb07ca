// Keeps the trainer's status and sends it to the extension: changes of its state, its job or the weights
// it holds at once, counters and losses at most every `intervalMs`, and step losses in batches, so a fast
// trainer cannot flood the pipe. The status is where the extension reads which weights the trainer holds
// and which job it runs: the trainer's to say, not the extension's to keep.
import {
  idleTrainerStatus,
  type ByteCounters,
  type StepsNotification,
  type TrainerJob,
  type TrainerStatus,
  type WeightsState,
} from '../../contracts/trainer-payloads';

export interface StatusSink {
  status(status: TrainerStatus): void;
  steps(batch: StepsNotification): void;
}

export class StatusReporter {
  private current: TrainerStatus = idleTrainerStatus;
  private pendingSteps: StepsNotification['points'] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sink: StatusSink,
    private readonly intervalMs = 200,
  ) {}

  get status(): TrainerStatus {
    return this.current;
  }

  /** Starts a new job's status from idle, keeping what describes the engine (its provider, the weights it holds) and the job. */
  reset(patch: Partial<TrainerStatus>): void {
    this.flushSteps();
    const { provider, job, weights } = this.current;
    this.current = { ...idleTrainerStatus, provider, job, weights, ...patch };
    this.sendNow();
  }

  update(patch: Partial<TrainerStatus>): void {
    const now = this.current;
    const atOnce =
      (patch.state !== undefined && patch.state !== now.state) ||
      (patch.job !== undefined && patch.job !== now.job) ||
      (patch.weights !== undefined && !sameWeights(patch.weights, now.weights));
    this.current = { ...now, ...patch };
    if (atOnce) this.sendNow();
    else this.schedule();
  }

  /** The weights the engine holds now (null: no model loaded). */
  hold(weights: WeightsState | null): void {
    this.update({ weights });
  }

  /** The job the trainer runs now (null: none). */
  running(job: TrainerJob | null): void {
    this.update({ job });
  }

  updateBytes(patch: Partial<ByteCounters>): void {
    this.update({ bytes: { ...this.current.bytes, ...patch } });
  }

  step(point: StepsNotification['points'][number]): void {
    this.pendingSteps.push(point);
    this.update({ step: point.step, loss: point.loss });
  }

  /** Sends everything pending now (before a job's result is returned). */
  flush(): void {
    this.sendNow();
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => this.sendNow(), this.intervalMs);
  }

  private flushSteps(): void {
    if (this.pendingSteps.length === 0) return;
    this.sink.steps({ points: this.pendingSteps });
    this.pendingSteps = [];
  }

  private sendNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.flushSteps();
    this.sink.status(this.current);
  }
}

function sameWeights(a: WeightsState | null, b: WeightsState | null): boolean {
  return (
    a === b || (a !== null && b !== null && a.kind === b.kind && a.steps === b.steps && a.round === b.round && a.runId === b.runId && a.restored === b.restored)
  );
}
