// Every local run and federation as a recorded run (extension/state/): begun with its checkpoint in its
// own folder, ended with the job's state or its failure, and found again when a window took it down.
// A run that fails gives the trainer back sound weights: its own checkpoint when it got going, else the
// weights from before it (the trainer loads them, and its status then says it holds them).
import { mkdirSync } from 'node:fs';
import * as vscode from 'vscode';
import { idleTrainerStatus, type InitializeResult, type WeightsState } from '../../contracts/trainer-rpc';
import type { CheckpointHeader, RunRecord } from '../../contracts/runs';
import type { RunInit, RunStore } from '../state/runStore';
import { unwrap } from './processErrors';
import type { TrainerService } from './trainerService';

/** A run the window took down this recently is resumed without asking. */
const RESUME_WITHOUT_ASKING_MS = 10 * 60_000;

/** A run begun: where its trainer writes the checkpoint, and the one it resumes from. */
export interface BegunRun {
  readonly runId: string;
  readonly checkpointPath: string;
  readonly resumeFrom: string | undefined;
}

export class RunRecorder {
  constructor(
    private readonly store: RunStore,
    private readonly log: vscode.LogOutputChannel,
    private readonly trainer: TrainerService,
  ) {}

  /**
   * A local run or a federation, from its first check on: an earlier failure is cleared as it starts, and
   * its own failure is what the views show, whether the trainer or the extension found the fault.
   */
  async asRun<T>(work: () => Promise<T>): Promise<T> {
    if (!this.trainer.busyWith) this.trainer.clearFailure();
    try {
      return await work();
    } catch (err) {
      const error = unwrap(err);
      const now = this.store.status.trainer;
      // A trainer at a job, or held by another command, keeps its status (this run's job ended before its
      // answer came, and its command let go of the trainer).
      if (now.state !== 'error' && now.job === null && !this.trainer.busyWith) {
        this.store.setTrainer({ ...idleTrainerStatus, provider: now.provider, weights: now.weights, state: 'error', detail: error.message });
      }
      throw error;
    }
  }

  /**
   * Begins a run (or the resume of `resumeOf`, from its checkpoint when it belongs to the loaded model;
   * `position` says where that checkpoint puts the run's history).
   */
  begin(
    init: RunInit,
    engine: InitializeResult,
    resumeOf: RunRecord | undefined,
    position: (header: CheckpointHeader | undefined, record: RunRecord) => { step: number; round: number },
  ): BegunRun {
    const header = resumeOf ? this.usableCheckpoint(resumeOf, engine) : undefined;
    const runId = this.store.beginRun(init, resumeOf ? { record: resumeOf, ...position(header, resumeOf) } : undefined);
    // The trainer writes the checkpoint in the run's folder, which exists from the start.
    mkdirSync(this.store.records.folder(runId), { recursive: true });
    const checkpointPath = this.store.records.checkpointPath(runId);
    return { runId, checkpointPath, resumeFrom: header ? checkpointPath : undefined };
  }

  /** Runs a job's request as the recorded run: it ends with the job's state, or failed with its error. */
  async record<T extends { stopped: boolean; weights: WeightsState }>(runId: string, request: () => Promise<T>): Promise<T> {
    const before = this.trainer.currentWeights;
    try {
      const result = await request();
      this.store.endRun(runId, { state: result.stopped ? 'stopped' : 'finished' });
      this.logRun(runId);
      return result;
    } catch (err) {
      const error = unwrap(err);
      const started = this.store.recordOf(runId)?.summary.state !== 'starting';
      this.store.endRun(runId, { state: 'failed', error: error.message });
      // The trainer dropped its weights for the run: a run that got going has its own checkpoint; one that
      // never started gets the weights from before it back, so nothing is lost on the way.
      const header = this.store.records.checkpointHeader(runId);
      await this.trainer.restoreWeights(started && header ? weightsOfCheckpoint(runId, header) : before);
      throw error;
    }
  }

  /**
   * A run the window took down (a reload, a closed window) in this workspace: resumed from its
   * checkpoint without asking when it happened in the last minutes, else offered. Returns the record.
   */
  interruptedRun(): { record: RunRecord; ask: boolean } | undefined {
    const record = this.store.interruptedRun();
    if (!record) return undefined;
    const when = record.summary.interruptedAt ?? null;
    return { record, ask: when === null || Date.now() - when > RESUME_WITHOUT_ASKING_MS };
  }

  /** The checkpoint a resume starts from, when there is one: its step and round. */
  checkpointOf(runId: string): { steps: number; round: number } | undefined {
    const header = this.store.records.checkpointHeader(runId);
    return header ? { steps: header.steps ?? 0, round: header.round ?? 0 } : undefined;
  }

  /** A run's checkpoint, if it belongs to the loaded model (else the run restarts from the beginning). */
  private usableCheckpoint(record: RunRecord, engine: InitializeResult): CheckpointHeader | undefined {
    const header = this.store.records.checkpointHeader(record.summary.id);
    return header && header.baseModel === engine.modelIdentity ? header : undefined;
  }

  private logRun(runId: string): void {
    const run = this.store.recordOf(runId);
    if (!run) return;
    const figures = this.store.dashboard.run?.id === runId ? this.store.dashboard.figures : undefined;
    this.log.info(
      `${run.summary.title} ${run.summary.state}: ${figures ? `${figures.text.progress}; ${figures.text.total}${figures.text.ratio ? `, ${figures.text.ratio}` : ''}; held-out ${figures.text.heldOut}` : run.summary.state}`,
    );
  }
}

function weightsOfCheckpoint(runId: string, header: { steps?: number; round?: number }): WeightsState {
  return header.round !== undefined
    ? { kind: header.round > 0 ? 'federation' : 'base', steps: 0, round: header.round, runId, restored: false }
    : { kind: (header.steps ?? 0) > 0 ? 'local' : 'base', steps: header.steps ?? 0, round: 0, runId, restored: false };
}
