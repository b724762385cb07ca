// The single source of what the UI shows: the trainer's status, the local server's, the runs (the one
// in progress, and past ones on disk) and every figure, computed once (contracts/run-figures.ts). The
// controller writes it; the sidebar, the dashboard, the status bar and the log read it. Which weights
// the trainer holds is the trainer's status's to say: the views read them there.
//
// A run begins pending: its notifications are recorded apart, and the charts keep showing the previous
// run until the new one really starts (a local run's first step, a federation's welcome). A run that
// fails before that leaves no trace; one that started is kept with its state, figures and checkpoint.
import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import { computeFigures, runKeyFigures, type RunFigures } from '../../contracts/run-figures';
import {
  emptyHistory,
  type EvaluationRecord,
  type RunHistory,
  type RunKind,
  type RunRecord,
  type RunResume,
  type RunState,
  type RunSummary,
} from '../../contracts/runs';
import {
  describeWeights,
  idleTrainerStatus,
  type Evaluation,
  type HeldOutMetricsNotification,
  type EvaluateResult,
  type RoundCompleted,
  type SeedProbabilities,
  type StepsNotification,
  type TrainerStatus,
  type WeightsState,
} from '../../contracts/trainer-rpc';
import type { DashboardView, LocalServerStatus, RunList, ViewStatus } from '../../contracts/webview-messages';
import type { RunRecords } from './runRecords';
import { StepRate } from './stepRate';

/** Step-loss points kept; beyond this, neighbours are averaged pairwise so the curve keeps its shape. */
const MAX_STEP_POINTS = 2000;
/** A running run's record is written at most this often (and at once when it ends). */
const SAVE_INTERVAL_MS = 2000;

function halve(points: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i + 1 < points.length; i += 2) out.push([points[i + 1]![0], (points[i]![1] + points[i + 1]![1]) / 2]);
  if (points.length % 2 === 1) out.push(points[points.length - 1]!);
  return out;
}

const ACTIVE_RUN_STATES: readonly RunState[] = ['starting', 'running', 'stopping'];

/** What a run is when it is created; the rest of its summary starts at zero. */
type RunOrigin = Pick<RunSummary, 'kind' | 'state' | 'title' | 'startedAt' | 'endedAt' | 'model' | 'modelIdentity' | 'server' | 'steps' | 'rounds'>;

/** A new run's record, its id sortable by its start time ("20261130-120501-3fa2c1"). */
function newRecord(origin: RunOrigin, resume: RunResume | null, workspace: RunRecord['workspace']): RunRecord {
  const stamp = new Date(origin.startedAt).toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return {
    version: 1,
    summary: {
      id: `${stamp}-${randomUUID().slice(0, 6)}`,
      ...origin,
      step: 0,
      committedRound: 0,
      loss: null,
      heldOutBaseline: null,
      heldOutLast: null,
      bytes: { rounds: 0, fedAvg: 0, overhead: 0 },
      evaluations: [],
      checkpoint: false,
      error: null,
    },
    history: { ...emptyHistory },
    resume,
    workspace,
  };
}

export interface RunInit {
  readonly kind: Exclude<RunKind, 'evaluation'>;
  readonly title: string;
  readonly model: string;
  readonly modelIdentity: string;
  readonly server: string | null;
  readonly steps: number;
  readonly rounds: number;
  readonly resume: RunResume;
}

/** A run being recorded: its record, and what the time estimate needs. */
interface Recording {
  record: RunRecord;
  /** Steps done in this process and the time they took (a resumed run's earlier steps are not among them). */
  rate: StepRate;
  /** When each round was committed (federations). */
  roundTimes: number[];
  startedAt: number;
}

export class RunStore implements vscode.Disposable {
  private trainer: TrainerStatus = idleTrainerStatus;
  private localServer: LocalServerStatus | null = null;
  private model: string | null = null;
  /** The run of this window the trainer runs or ran last, once it really started. */
  private current: Recording | null = null;
  /** A run that has not really started yet (its charts are not shown). */
  private pending: Recording | null = null;
  /** Notifications are recorded while a run is active. */
  private recording = false;
  /** The run the dashboard shows (null: the current run, else the latest). */
  private shownId: string | null = null;
  private compareId: string | null = null;
  private saveTimer: NodeJS.Timeout | undefined;
  private readonly statusChanged = new vscode.EventEmitter<ViewStatus>();
  private readonly dashboardChanged = new vscode.EventEmitter<DashboardView>();
  private readonly runsChanged = new vscode.EventEmitter<RunList>();
  readonly onDidChangeStatus = this.statusChanged.event;
  readonly onDidChangeDashboard = this.dashboardChanged.event;
  readonly onDidChangeRuns = this.runsChanged.event;

  constructor(
    readonly records: RunRecords,
    private readonly workspace: string | null,
  ) {}

  // ---- what the views read -------------------------------------------------------------------

  get status(): ViewStatus {
    const run = this.pending ?? this.current;
    const figures = run
      ? this.figuresOf(run)
      : computeFigures(null, emptyHistory, this.trainer.mode === 'none' ? null : { trainer: this.trainer, etaSeconds: null });
    return {
      trainer: this.trainer,
      localServer: this.localServer,
      model: this.model,
      weights: this.weights,
      weightsText: this.weights ? this.weightsText(this.weights) : null,
      actsOnText: this.actsOnText(),
      figures,
    };
  }

  /** The chart series of the current run (or the latest one on disk). */
  get history(): RunHistory {
    return this.current?.record.history ?? this.records.list()[0]?.history ?? emptyHistory;
  }

  get dashboard(): DashboardView {
    const shown = this.shownRecord();
    const compare = this.compareId && this.compareId !== shown?.summary.id ? this.recordOf(this.compareId) : undefined;
    const isCurrent = shown !== undefined && shown.summary.id === this.current?.record.summary.id;
    const figures = isCurrent && this.current ? this.figuresOf(this.current) : computeFigures(shown?.summary ?? null, shown?.history ?? emptyHistory);
    return {
      run: shown?.summary ?? null,
      history: shown?.history ?? emptyHistory,
      figures,
      live: this.shownId === null,
      compare: compare ? { run: compare.summary, history: compare.history } : null,
    };
  }

  get runs(): RunList {
    const list = this.allRecords();
    return {
      runs: list.map((r) => ({ summary: r.summary, figures: runKeyFigures(r.summary, r.history) })),
      shownRunId: this.shownRecord()?.summary.id ?? null,
      compareRunId: this.compareId,
      liveRunId: this.current?.record.summary.id ?? null,
    };
  }

  /** Summaries of every run, newest first. */
  get summaries(): RunSummary[] {
    return this.allRecords().map((r) => r.summary);
  }

  recordOf(id: string): RunRecord | undefined {
    if (this.current?.record.summary.id === id) return this.current.record;
    if (this.pending?.record.summary.id === id) return this.pending.record;
    return this.records.get(id);
  }

  /**
   * The weights the trainer holds, as its status says; a run removed from the list is no longer named
   * (the weights are still fine-tuned, their run is gone).
   */
  private get weights(): WeightsState | null {
    const w = this.trainer.weights;
    return w?.runId && !this.recordOf(w.runId) ? { ...w, runId: null } : w;
  }

  /** The run whose weights these are, in words: "fine-tuned after round 4 (Local federation)". */
  weightsText(w: WeightsState): string {
    const run = w.runId ? this.recordOf(w.runId) : undefined;
    return `${describeWeights(w)}${run ? ` (${run.summary.title}, ${new Date(run.summary.startedAt).toLocaleString()})` : ''}`;
  }

  /**
   * The run the dashboard shows when it was opened from the history, has a checkpoint, and is not the one
   * whose weights the trainer holds: Export and Evaluate act on its weights (they load them first).
   */
  shownRunToLoad(): RunSummary | null {
    if (this.shownId === null) return null;
    const run = this.recordOf(this.shownId)?.summary;
    if (!run || run.kind === 'evaluation' || !run.checkpoint) return null;
    return this.weights?.runId === run.id ? null : run;
  }

  /** What Export and Evaluate act on when it is not the weights held: "Local training of 5/3/2026, 10:02 (shown in the dashboard)". */
  private actsOnText(): string | null {
    const run = this.shownRunToLoad();
    return run ? `the weights of ${run.title} of ${new Date(run.startedAt).toLocaleString()} (shown in the dashboard), loaded first` : null;
  }

  /** The weights in a few words: "base", "run 3 step 40", "run 2 round 4" (run N: the Nth of the history, oldest first). */
  weightsLabel(w: WeightsState | null): string {
    if (!w || w.kind === 'base') return 'base';
    const at = w.kind === 'federation' ? `round ${w.round}` : `step ${w.steps}`;
    const runs = this.allRecords()
      .filter((r) => r.summary.kind !== 'evaluation')
      .reverse();
    const n = w.runId ? runs.findIndex((r) => r.summary.id === w.runId) : -1;
    return n >= 0 ? `run ${n + 1} ${at}` : `fine-tuned, ${at}`;
  }

  // ---- the trainer, the server, the engine ---------------------------------------------------

  setTrainer(trainer: TrainerStatus): void {
    this.trainer = trainer;
    if (this.pending && (trainer.state === 'training' || (this.pending.record.summary.kind === 'federation' && trainer.state === 'connected'))) this.promote();
    // A run still pending is not the current one: the status belongs to it, not to the run before.
    const run = this.recording && !this.pending ? this.current : null;
    if (run) {
      const s = run.record.summary;
      const now = Date.now();
      run.rate.observe(now, s.kind === 'federation' ? { round: trainer.round, step: trainer.roundStep ?? 0 } : { round: 0, step: trainer.step });
      s.step = trainer.step;
      if (trainer.steps > 0) s.steps = trainer.steps;
      if (trainer.rounds > 0) s.rounds = trainer.rounds;
      s.committedRound = Math.max(s.committedRound, trainer.committedRound ?? 0);
      if (trainer.loss !== null) s.loss = trainer.loss;
      if (trainer.state === 'stopping') s.state = 'stopping';
      else if (['training', 'connected', 'reconnecting', 'connecting'].includes(trainer.state) && s.state !== 'stopping') s.state = 'running';
      if (s.kind === 'federation') s.bytes.overhead = this.figuresOf(run).bytes.overhead;
      this.saveSoon();
    }
    this.fireStatus();
    if (run) this.fireDashboard();
  }

  setLocalServer(localServer: LocalServerStatus | null): void {
    this.localServer = localServer;
    // The local server is the authority on what its federation committed: a round committed while this
    // client was leaving (its upload in, its result never heard) is done for the run too.
    const run = this.current?.record.summary;
    if (localServer && run?.kind === 'federation' && run.server === localServer.url && localServer.committed > run.committedRound) {
      run.committedRound = localServer.committed;
      this.saveSoon();
      this.fireDashboard();
      this.runsChanged.fire(this.runs);
    }
    this.fireStatus();
  }

  setModel(model: string | null): void {
    this.model = model;
    this.fireStatus();
  }

  // ---- runs ------------------------------------------------------------------------------------

  /** A new run (or the resume of `resumeOf`, its charts cut back to its checkpoint): pending until it really starts. */
  beginRun(init: RunInit, resumeOf?: { record: RunRecord; step: number; round: number }): string {
    const now = Date.now();
    let record: RunRecord;
    if (resumeOf) {
      const h = resumeOf.record.history;
      const history: RunHistory = {
        stepLoss: h.stepLoss.filter(([x]) => x <= resumeOf.step),
        heldOut: h.heldOut.filter(([x]) => x <= resumeOf.step),
        ...(h.accuracy ? { accuracy: h.accuracy.filter(([x]) => x <= resumeOf.step) } : {}),
        ...(h.generation ? { generation: h.generation.filter(([x]) => x <= resumeOf.step), generationMetric: h.generationMetric } : {}),
        rounds: h.rounds.filter((r) => r.round <= resumeOf.round),
        seeds: h.seeds,
      };
      record = {
        ...resumeOf.record,
        summary: {
          ...resumeOf.record.summary,
          state: 'starting',
          endedAt: null,
          error: null,
          interruptedAt: null,
          step: resumeOf.step,
          committedRound: resumeOf.round,
        },
        history,
        resume: init.resume,
      };
    } else {
      record = newRecord(
        {
          kind: init.kind,
          state: 'starting',
          title: init.title,
          startedAt: now,
          endedAt: null,
          model: init.model,
          modelIdentity: init.modelIdentity,
          server: init.server,
          steps: init.steps,
          rounds: init.rounds,
        },
        init.resume,
        this.workspace,
      );
    }
    this.pending = { record, rate: new StepRate(), roundTimes: [], startedAt: now };
    this.recording = true;
    this.fireStatus();
    return record.summary.id;
  }

  /** The run ended: its state is kept with its figures (a run that never started leaves nothing, unless it was a resume). */
  endRun(id: string, outcome: { state: 'finished' | 'stopped' | 'failed'; error?: string }): void {
    this.recording = false;
    if (this.pending?.record.summary.id === id) {
      const { record } = this.pending;
      this.pending = null;
      if (this.records.get(id)) {
        // A resume that did not get going: the run stays, interrupted, with why.
        record.summary.state = 'interrupted';
        record.summary.error = outcome.error ?? null;
        this.records.save(record);
      } else {
        // A run that never started leaves nothing behind (its folder was made for its checkpoint).
        this.records.remove(id);
      }
      this.fireAll();
      return;
    }
    const run = this.current;
    if (!run || run.record.summary.id !== id) return;
    const s = run.record.summary;
    s.state = outcome.state;
    s.error = outcome.error ?? null;
    s.endedAt = Date.now();
    s.checkpoint = this.records.hasCheckpoint(id);
    this.saveNow();
    this.fireAll();
  }

  /** The window is going away while a run is active: record it as interrupted (a reload resumes it). */
  markInterrupted(): void {
    const run = this.recording ? (this.current ?? this.pending) : null;
    if (!run) return;
    const s = run.record.summary;
    if (run === this.pending && !this.records.get(s.id)) return; // never started: nothing to resume
    s.state = 'interrupted';
    s.interruptedAt = Date.now();
    s.checkpoint = this.records.hasCheckpoint(s.id);
    this.records.save(run.record);
  }

  /** Records an Evaluate with the run whose weights it scored, or with the model's evaluations of its base. */
  recordEvaluation(result: EvaluateResult, model: { name: string; identity: string }): RunSummary {
    const evaluation: EvaluationRecord = {
      at: Date.now(),
      loss: result.loss,
      perplexity: result.perplexity,
      examples: result.examples,
      heldOutExamples: result.heldOutExamples,
      tokens: result.tokens,
      weights: result.weights,
      accuracy: result.accuracy ?? null,
      generation: result.generation ?? null,
      ...(result.generationMetric ? { generationMetric: result.generationMetric } : {}),
    };
    let record = result.weights.runId ? this.recordOf(result.weights.runId) : undefined;
    if (!record) {
      record = this.allRecords().find((r) => r.summary.kind === 'evaluation' && r.summary.modelIdentity === model.identity);
      if (!record) {
        const now = Date.now();
        record = newRecord(
          {
            kind: 'evaluation',
            state: 'finished',
            title: `Evaluations of ${model.name} (base)`,
            startedAt: now,
            endedAt: now,
            model: model.name,
            modelIdentity: model.identity,
            server: null,
            steps: 0,
            rounds: 0,
          },
          null,
          this.workspace,
        );
      }
    }
    record.summary.evaluations = [...record.summary.evaluations, evaluation];
    this.records.save(record);
    this.fireAll();
    return record.summary;
  }

  /** Shows a run in the dashboard (null: the current one). */
  show(id: string | null): void {
    if (id !== null && !this.recordOf(id)) throw new Error(`no run ${id}`);
    this.shownId = id === this.current?.record.summary.id ? null : id;
    if (this.compareId === (id ?? this.current?.record.summary.id)) this.compareId = null;
    this.fireAll();
  }

  compare(id: string | null): void {
    if (id !== null && !this.recordOf(id)) throw new Error(`no run ${id}`);
    this.compareId = id;
    this.fireAll();
  }

  remove(id: string): boolean {
    if (this.current?.record.summary.id === id && this.recording) throw new Error('the run in progress cannot be removed; stop it first');
    if (this.current?.record.summary.id === id) this.current = null;
    if (this.shownId === id) this.shownId = null;
    if (this.compareId === id) this.compareId = null;
    const removed = this.records.remove(id);
    this.fireAll();
    return removed;
  }

  /** The run interrupted by the window going away (or a crash) in this workspace, newest first. */
  interruptedRun(): RunRecord | undefined {
    return this.records
      .list()
      .find(
        (r) =>
          r.summary.kind !== 'evaluation' &&
          r.resume !== null &&
          r.workspace === this.workspace &&
          (r.summary.state === 'interrupted' || ACTIVE_RUN_STATES.includes(r.summary.state)),
      );
  }

  /** Marks a run not to be resumed (the user said so). */
  dismissInterrupted(id: string): void {
    const record = this.records.get(id);
    if (!record) return;
    record.summary.state = 'stopped';
    record.summary.endedAt ??= record.summary.interruptedAt ?? Date.now();
    this.records.save(record);
    this.fireAll();
  }

  // ---- the trainer's notifications -------------------------------------------------------------

  addSteps(batch: StepsNotification): void {
    const run = this.recordingRun();
    if (!run) return;
    let stepLoss = [...run.record.history.stepLoss, ...batch.points.map((p): [number, number] => [p.step, p.loss])];
    while (stepLoss.length > MAX_STEP_POINTS) stepLoss = halve(stepLoss);
    this.patchHistory(run, { stepLoss });
  }

  addEvaluation(e: Evaluation): void {
    const run = this.recordingRun();
    if (!run) return;
    const heldOut = run.record.history.heldOut.filter(([x]) => x !== e.step);
    heldOut.push([e.step, e.heldOutLoss]);
    heldOut.sort((a, b) => a[0] - b[0]);
    run.record.summary.heldOutBaseline = heldOut[0]?.[1] ?? null;
    run.record.summary.heldOutLast = heldOut.at(-1)?.[1] ?? null;
    this.patchHistory(run, { heldOut });
  }

  /** Held-out accuracy and next-line exact match (or Rouge-L) at a step: series beside the loss. */
  addMetrics(m: HeldOutMetricsNotification): void {
    const run = this.recordingRun();
    if (!run) return;
    const h = run.record.history;
    const series = (old: RunHistory['heldOut'] | undefined, y: number | null): RunHistory['heldOut'] | undefined => {
      if (y === null) return old;
      return [...(old ?? []).filter(([x]) => x !== m.step), [m.step, y] as [number, number]].sort((a, b) => a[0] - b[0]);
    };
    const generationMetric = m.rougeL !== null ? 'rougeL' : m.exactMatch !== null ? 'exactMatch' : h.generationMetric;
    this.patchHistory(run, {
      accuracy: series(h.accuracy, m.accuracy),
      generation: series(h.generation, m.rougeL ?? m.exactMatch),
      ...(generationMetric ? { generationMetric } : {}),
    });
  }

  addRound(r: RoundCompleted): void {
    const run = this.recordingRun();
    if (!run) return;
    const rounds = run.record.history.rounds.filter((x) => x.round !== r.round);
    rounds.push({ round: r.round, up: r.bytesUp, down: r.bytesDown, fedAvg: r.fedAvgBytes });
    rounds.sort((a, b) => a.round - b.round);
    const s = run.record.summary;
    s.committedRound = Math.max(s.committedRound, r.round);
    s.bytes.rounds = rounds.reduce((n, x) => n + x.up + x.down, 0);
    s.bytes.fedAvg = rounds.reduce((n, x) => n + x.fedAvg, 0);
    run.roundTimes.push(Date.now());
    this.patchHistory(run, { rounds });
  }

  setSeeds(seeds: SeedProbabilities): void {
    const run = this.recordingRun();
    if (run) this.patchHistory(run, { seeds });
  }

  /** The figures of a round as the log words them. */
  roundLogLine(round: number): string | undefined {
    const run = this.current;
    if (!run) return undefined;
    const r = run.record.history.rounds.find((x) => x.round === round);
    if (!r) return undefined;
    const figures = this.figuresOf(run);
    return `round ${round} committed: ${r.up + r.down} bytes (↑ ${r.up} ↓ ${r.down}); ${figures.text.total}, ${figures.text.ratio}`;
  }

  dispose(): void {
    clearTimeout(this.saveTimer);
    this.statusChanged.dispose();
    this.dashboardChanged.dispose();
    this.runsChanged.dispose();
  }

  // ---- internals -------------------------------------------------------------------------------

  private allRecords(): RunRecord[] {
    const list = this.records.list().filter((r) => r.summary.id !== this.current?.record.summary.id);
    if (this.current) list.unshift(this.current.record);
    return list.sort((a, b) => b.summary.startedAt - a.summary.startedAt);
  }

  private shownRecord(): RunRecord | undefined {
    if (this.shownId) return this.recordOf(this.shownId);
    return this.current?.record ?? this.records.list().find((r) => r.summary.kind !== 'evaluation');
  }

  private recordingRun(): Recording | null {
    return this.recording ? (this.pending ?? this.current) : null;
  }

  private promote(): void {
    const run = this.pending;
    if (!run) return;
    this.pending = null;
    run.record.summary.state = 'running';
    this.current = run;
    this.shownId = null;
    if (this.compareId === run.record.summary.id) this.compareId = null;
    this.saveNow();
    this.fireAll();
  }

  private figuresOf(run: Recording): RunFigures {
    const live =
      run === this.current || run === this.pending
        ? this.recording
          ? { trainer: this.trainer, etaSeconds: this.eta(run) }
          : { trainer: this.trainer, etaSeconds: null }
        : null;
    return computeFigures(run.record.summary, run.record.history, live);
  }

  /** Seconds left: a local run from its pace in this process; a federation from its rounds' pace. */
  private eta(run: Recording): number | null {
    const s = run.record.summary;
    const now = Date.now();
    if (s.kind === 'local') return run.rate.secondsLeft(now, s.steps - s.step);
    const left = s.rounds - s.committedRound;
    if (s.rounds === 0 || left <= 0) return null;
    if (run.roundTimes.length >= 1) {
      const since = run.roundTimes.length >= 2 ? run.roundTimes[0]! : run.startedAt;
      const perRound = (run.roundTimes.at(-1)! - since) / Math.max(1, run.roundTimes.length - (run.roundTimes.length >= 2 ? 1 : 0));
      const intoRound = now - run.roundTimes.at(-1)!;
      return Math.max(0, (left * perRound - intoRound) / 1000);
    }
    const tau = s.steps;
    return tau > 0 ? run.rate.secondsLeft(now, left * tau - (this.trainer.roundStep ?? 0)) : null;
  }

  private patchHistory(run: Recording, patch: Partial<RunHistory>): void {
    run.record.history = { ...run.record.history, ...patch };
    if (run === this.current) {
      this.saveSoon();
      this.fireDashboard();
      this.fireStatus();
    }
  }

  private saveSoon(): void {
    this.saveTimer ??= setTimeout(() => {
      this.saveTimer = undefined;
      this.saveNow();
      this.runsChanged.fire(this.runs);
    }, SAVE_INTERVAL_MS);
  }

  private saveNow(): void {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    const run = this.current;
    if (!run) return;
    run.record.summary.checkpoint = this.records.hasCheckpoint(run.record.summary.id);
    this.records.save(run.record);
  }

  private fireStatus(): void {
    this.statusChanged.fire(this.status);
  }

  private fireDashboard(): void {
    this.dashboardChanged.fire(this.dashboard);
  }

  private fireAll(): void {
    this.fireStatus();
    this.fireDashboard();
    this.runsChanged.fire(this.runs);
  }
}
