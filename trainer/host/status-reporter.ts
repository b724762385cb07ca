// Keeps the trainer's status and sends it to the extension: state changes at once, counters and losses
// at most every `intervalMs`, and step losses in batches, so a fast trainer cannot flood the pipe.
import { idleTrainerStatus, type ByteCounters, type StepsNotification, type TrainerStatus } from '../../contracts/trainer-payloads';

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

  /** Starts a new job's status from idle, keeping what describes the engine. */
  reset(patch: Partial<TrainerStatus>): void {
    this.flushSteps();
    this.current = { ...idleTrainerStatus, provider: this.current.provider, ...patch };
    this.sendNow();
  }

  update(patch: Partial<TrainerStatus>): void {
    const stateChanged = patch.state !== undefined && patch.state !== this.current.state;
    this.current = { ...this.current, ...patch };
    if (stateChanged) this.sendNow();
    else this.schedule();
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
