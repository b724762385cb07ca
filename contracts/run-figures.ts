// Every figure of a run, computed in one place and worded once: the sidebar, the dashboard, the status
// bar and the log show these same values and strings. Bytes are the committed rounds' as the server
// counts them (assignment to result, for this client), FedAvg's for the same rounds, and the ratio of
// the two; the connection overhead is counted apart. Round numbers: `committed` rounds are done,
// `inProgress` is the round being trained.
import * as z from 'zod/mini';
import { formatBytes, formatLoss } from '../protocol/format';
import type { RunHistory, RunSummary } from './runs';
import type { TrainerStatus } from './trainer-payloads';

const nonNeg = () => z.number().check(z.nonnegative());

export const runFiguresSchema = z.object({
  progress: z.object({ fraction: z.nullable(z.number()), etaSeconds: z.nullable(z.number()) }),
  rounds: z.object({ inProgress: z.nullable(nonNeg()), committed: nonNeg(), total: nonNeg() }),
  bytes: z.object({ lastRound: z.nullable(nonNeg()), rounds: nonNeg(), fedAvg: nonNeg(), overhead: nonNeg(), ratio: z.nullable(z.number()) }),
  text: z.object({
    /** "47/50 · ~12 s left", "Round 2 of 10 · step 3/8 · ~1 min left", "2 of 10 rounds done". */
    progress: z.string(),
    /** "511 B" (the last committed round), or "—". */
    lastRound: z.string(),
    /** "1.02 KB in 2 rounds", or "—". */
    total: z.string(),
    /** "35,524× less than FedAvg", or "" without rounds. */
    ratio: z.string(),
    /** "2.9512 (base 3.2101)". */
    heldOut: z.string(),
  }),
});
export type RunFigures = z.infer<typeof runFiguresSchema>;

/** What only a run in progress adds: the trainer's status and a time estimate. */
export interface LiveFigures {
  readonly trainer: TrainerStatus;
  readonly etaSeconds: number | null;
}

const ACTIVE_STATES = new Set(['loading', 'training', 'connecting', 'connected', 'reconnecting', 'stopping']);

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** "~12 s left", "~3 min left", "~1 h 5 min left". */
export function formatEta(seconds: number): string {
  if (seconds < 60) return `~${Math.max(1, Math.round(seconds))} s left`;
  if (seconds < 3600) return `~${Math.round(seconds / 60)} min left`;
  const h = Math.floor(seconds / 3600);
  const min = Math.round((seconds - h * 3600) / 60);
  return `~${h} h${min > 0 ? ` ${min} min` : ''} left`;
}

export function ratioText(ratio: number | null): string {
  return ratio === null ? '' : `${formatCount(ratio)}× less than FedAvg`;
}

/** "2 of 4 rounds done", "round 3 running" — the same words for the trainer and the local server. */
export function roundsDoneText(committed: number, total: number): string {
  return `${committed} of ${total} round${total === 1 ? '' : 's'} done`;
}

export function computeFigures(run: RunSummary | null, history: RunHistory, live: LiveFigures | null = null): RunFigures {
  const trainer = live?.trainer ?? null;
  const active = trainer !== null && ACTIVE_STATES.has(trainer.state);
  const federation = run?.kind === 'federation' || trainer?.mode === 'federation';
  const committed = Math.max(run?.committedRound ?? 0, trainer?.committedRound ?? 0, history.rounds.at(-1)?.round ?? 0);
  const total = Math.max(run?.rounds ?? 0, trainer?.rounds ?? 0);
  const inProgress = active && trainer && trainer.state !== 'stopping' && trainer.round > committed ? trainer.round : null;

  const roundsBytes = history.rounds.reduce((n, r) => n + r.up + r.down, 0);
  const fedAvg = history.rounds.reduce((n, r) => n + r.fedAvg, 0);
  const last = history.rounds.at(-1);
  const lastRound = last ? last.up + last.down : null;
  const overhead =
    trainer && trainer.mode === 'federation'
      ? Math.max(0, trainer.bytes.upTotal + trainer.bytes.downTotal - roundsBytes - trainer.bytes.upRound - trainer.bytes.downRound)
      : (run?.bytes.overhead ?? 0);
  const ratio = roundsBytes > 0 ? fedAvg / roundsBytes : null;

  const eta = active ? (live?.etaSeconds ?? null) : null;
  const etaText = eta !== null ? ` · ${formatEta(eta)}` : '';
  let progress: string;
  let fraction: number | null = null;
  if (federation) {
    const tau = trainer?.steps ?? run?.steps ?? 0;
    fraction = total > 0 ? committed / total : null;
    if (inProgress !== null) {
      const roundStep = trainer?.roundStep ?? 0;
      progress = `Round ${inProgress} of ${total || '?'} · step ${roundStep}/${tau}${etaText}`;
      if (total > 0 && tau > 0) fraction = (committed + roundStep / tau) / total;
    } else if (active && total > 0 && trainer?.state !== 'stopping') {
      progress = `${roundsDoneText(committed, total)}${committed < total ? ` · waiting for round ${committed + 1}` : ''}${etaText}`;
    } else if (active && total === 0) {
      progress = 'Joining…';
    } else if (total === 0) {
      // Never joined (a refused connection): no rounds to count, not "0 of 0 rounds done".
      progress = trainer?.state === 'error' ? 'Not joined' : '—';
    } else {
      progress = roundsDoneText(committed, total);
    }
  } else if (run || trainer?.mode === 'local') {
    const step = Math.max(run?.step ?? 0, trainer?.mode === 'local' ? trainer.step : 0);
    const steps = Math.max(run?.steps ?? 0, trainer?.mode === 'local' ? trainer.steps : 0);
    fraction = steps > 0 ? step / steps : null;
    progress = `${formatCount(step)}/${formatCount(steps)}${etaText}`;
  } else {
    progress = 'Not training';
  }

  const heldOutLast = history.heldOut.at(-1)?.[1] ?? run?.heldOutLast ?? null;
  const baseline = history.heldOut[0]?.[1] ?? run?.heldOutBaseline ?? null;
  const heldOut =
    heldOutLast === null ? '—' : `${formatLoss(heldOutLast)}${baseline !== null && history.heldOut.length > 1 ? ` (base ${formatLoss(baseline)})` : ''}`;

  return {
    progress: { fraction, etaSeconds: eta },
    rounds: { inProgress, committed, total },
    bytes: { lastRound, rounds: roundsBytes, fedAvg, overhead, ratio },
    text: {
      progress,
      lastRound: lastRound === null ? '—' : formatBytes(lastRound),
      total: history.rounds.length > 0 ? `${formatBytes(roundsBytes)} in ${history.rounds.length} round${history.rounds.length === 1 ? '' : 's'}` : '—',
      ratio: ratioText(ratio),
      heldOut,
    },
  };
}

/** A run in one line for the run list: "6/6 steps · held-out 3.2101 → 2.9512" / "2 of 2 rounds done · 1.02 KB · 35,524× less than FedAvg". */
export function runKeyFigures(run: RunSummary, history?: RunHistory): string {
  const parts: string[] = [];
  if (run.kind === 'local') parts.push(`${formatCount(run.step)}/${formatCount(run.steps)} steps`);
  if (run.kind === 'federation') {
    if (run.rounds > 0) parts.push(roundsDoneText(run.committedRound, run.rounds));
    if (run.bytes.rounds > 0) parts.push(formatBytes(run.bytes.rounds), ratioText(run.bytes.fedAvg / run.bytes.rounds));
  }
  const heldOutLast = history?.heldOut.at(-1)?.[1] ?? run.heldOutLast;
  if (run.heldOutBaseline !== null && heldOutLast !== null && run.kind !== 'evaluation')
    parts.push(`held-out ${formatLoss(run.heldOutBaseline)} → ${formatLoss(heldOutLast)}`);
  const evaluation = run.evaluations.at(-1);
  if (evaluation) parts.push(`evaluated ${formatLoss(evaluation.loss)}`);
  if (run.state === 'failed' && run.error) parts.push(`failed: ${run.error}`);
  if (run.state === 'interrupted') parts.push('interrupted');
  return parts.join(' · ');
}

/** Exponential moving average of the step losses (the raw ones are noise at batch size 1–4). */
export function smoothLosses(points: readonly (readonly [number, number])[], alpha = 0.1): [number, number][] {
  const out: [number, number][] = [];
  let ema: number | null = null;
  for (const [x, y] of points) {
    if (!Number.isFinite(y)) continue;
    ema = ema === null ? y : ema + alpha * (y - ema);
    out.push([x, ema]);
  }
  return out;
}
