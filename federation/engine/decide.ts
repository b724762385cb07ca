// The round lifecycle as a pure, synchronous function: decide(state, event) → { state, effects }. It
// opens rounds (sampling with the store's secret), takes uploads, paces and closes rounds, counts missed
// deadlines, computes each commit (close-round.ts), refuses diverging rounds and halts after three, and
// takes over rounds other gateways committed. It reads no clock and no store: time and the store's
// answers come in the events, and what is to be done goes out as effects (effects.ts) that the driver
// performs in order. Completions that no longer match the open round (an earlier attempt, a round
// replaced meanwhile) change nothing.
import { sumAbs, type ServerMessage, type UploadMessage } from '../../protocol';
import { fedAvgBytesPerClient } from '../../protocol/wire-bytes';
import type { RoundBytes } from '../events';
import { pacedDeadlineMs, roundPace } from '../pacing';
import { afterOf } from '../record-chain';
import { HISTORY_ROUNDS, type RoundStatistics } from '../robust';
import { sampleClientsWithKey, samplingKey } from '../sampling';
import { closeRound, currentProbabilities } from './close-round';
import type { Effect } from './effects';
import type { EngineEvent } from './inputs';
import { MISSES_BEFORE_NOT_AWAITED, REFUSALS_BEFORE_HALT, isFinished, type CloseReason, type EngineState, type OpenRound } from './state';

export interface Decision {
  readonly state: EngineState;
  readonly effects: readonly Effect[];
}

const same = (r: OpenRound | null, round: number, attempt: number): r is OpenRound => r !== null && r.round === round && r.attempt === attempt;

function withOpen(s: EngineState, patch: Partial<OpenRound>): EngineState {
  return s.open ? { ...s, open: { ...s.open, ...patch } } : s;
}

/** A committed round's statistics into the history (none: zeros, which count for nothing). */
function remember(history: readonly RoundStatistics[], statistics: RoundStatistics | null | undefined): RoundStatistics[] {
  return [...history, statistics ?? { absG: 0, examples: 0 }].slice(-HISTORY_ROUNDS);
}

function roundBytes(s: EngineState, bytes: ReadonlyMap<string, { up: number; down: number }>, participants: number): RoundBytes {
  const perClient: Record<string, { up: number; down: number }> = {};
  let up = 0;
  let down = 0;
  for (const [id, b] of bytes) {
    perClient[id] = { ...b };
    up += b.up;
    down += b.down;
  }
  return { up, down, perClient, fedAvg: participants * fedAvgBytesPerClient(s.rules.paramCount) };
}

/** The rounds' clients still awaited: all, less those that missed MISSES_BEFORE_NOT_AWAITED deadlines in a row. */
function awaitedOf(s: EngineState, r: OpenRound): string[] {
  return [...r.assigned].filter((id) => (s.missedInARow.get(id) ?? 0) < MISSES_BEFORE_NOT_AWAITED);
}

/**
 * Whether the awaited clients have all uploaded is the store's to say (uploads may arrive at other
 * gateways): every sampled client, less those not awaited. A round that awaits none waits for all.
 */
function checkAllIn(s: EngineState, r: OpenRound, then: 'pace' | 'none'): Effect {
  const awaited = awaitedOf(s, r);
  const all = awaited.length === r.assigned.size || awaited.length === 0;
  return {
    kind: 'checkAllIn',
    round: r.round,
    attempt: r.attempt,
    awaited: all ? null : awaited,
    local: [...r.uploads.keys()],
    sampled: r.assigned.size,
    then,
  };
}

/** Closes the open round: its uploads (those at other gateways too) are collected, then committed. */
function startClosing(s: EngineState, reason: CloseReason): Decision {
  const r = s.open as OpenRound;
  const effects: Effect[] = [];
  if (r.timerArmed) effects.push({ kind: 'cancelTimer' });
  effects.push({ kind: 'collectUploads', round: r.round, attempt: r.attempt });
  return { state: withOpen(s, { closing: reason, timerArmed: false }), effects };
}

/**
 * Brings the round's deadline forward to the recent pace once more than half of its sampled clients
 * uploaded (pacing.ts); the configured deadline stays its latest close.
 */
function pace(s: EngineState, r: OpenRound): Decision {
  if (r.paced) return { state: s, effects: [] };
  const ms = pacedDeadlineMs(s.paces, r.uploads.size, r.assigned.size, s.rules.config.deadlineMs, s.rules.pacing);
  if (ms === null) return { state: s, effects: [] };
  const at = r.startedAt + ms;
  if (at >= r.deadlineAt) return { state: withOpen(s, { paced: true }), effects: [] };
  return {
    state: withOpen(s, { paced: true, timerArmed: true }),
    effects: [
      { kind: 'cancelTimer' },
      { kind: 'armTimer', round: r.round, attempt: r.attempt, reason: 'paced', at },
      { kind: 'log', level: 'info', fields: { event: 'round_paced', round: r.round, deadlineMs: ms, uploaded: r.uploads.size, sampled: r.assigned.size } },
    ],
  };
}

/** Opens a round this engine sampled: its timer armed, its record written for every gateway to follow. */
function presenceRead(s: EngineState, connected: readonly string[], now: number): Decision {
  if (s.open || s.closed || isFinished(s)) return { state: s, effects: [] };
  const { config, minClients, secret } = s.rules;
  const others = connected.filter((id) => !s.refusedClients.has(id));
  // Leave out clients refused this round while enough others are here; else rerun with everyone.
  const ready = others.length >= minClients ? others : connected;
  if (ready.length < minClients) return { state: s, effects: [] };
  const round = s.committed.round + 1;
  const attempt = s.attempt;
  // Drawn with a key from the server's secret: no one can tell the sample before the round starts.
  const chosen = sampleClientsWithKey(ready, config.clientsPerRound, samplingKey(secret, round, attempt));
  const deadlineAt = now + config.deadlineMs;
  const open: OpenRound = {
    round,
    attempt,
    assigned: new Set(chosen),
    uploads: new Map(),
    arrivals: new Map(),
    bytes: new Map(),
    startedAt: now,
    deadlineAt,
    paced: false,
    timerArmed: true,
    announced: false,
    closing: null,
    commit: null,
  };
  return {
    state: { ...s, open },
    effects: [
      { kind: 'armTimer', round, attempt, reason: 'deadline', at: deadlineAt },
      { kind: 'saveOpenRound', record: { round, attempt, assigned: chosen, deadlineAt } },
    ],
  };
}

function roundStarted(s: EngineState, r: OpenRound, by?: string): Effect[] {
  const clients = [...r.assigned];
  return [
    { kind: 'log', level: 'info', fields: { event: 'round_started', round: r.round, attempt: r.attempt, clients, ...(by === undefined ? {} : { by }) } },
    { kind: 'emit', name: 'roundStarted', payload: { round: r.round, clients, attempt: r.attempt } },
    { kind: 'assign', round: r.round, clients, probabilities: currentProbabilities(s) },
  ];
}

/** A round closed at a deadline: each sampled client without an upload missed it once more in a row. */
function countMisses(s: EngineState, r: OpenRound, effects: Effect[]): Map<string, number> {
  const missed = new Map(s.missedInARow);
  for (const id of r.assigned) {
    if (r.uploads.has(id)) continue;
    const n = (missed.get(id) ?? 0) + 1;
    missed.set(id, n);
    if (n !== MISSES_BEFORE_NOT_AWAITED) continue;
    effects.push({ kind: 'log', level: 'warn', fields: { event: 'client_not_awaited', round: r.round, clientId: id, missed: n } });
    effects.push({ kind: 'emit', name: 'notAwaited', payload: { round: r.round, clientId: id, missed: n } });
  }
  return missed;
}

/** The closing round's uploads are all known: restart it, refuse it, or write its commit. */
function uploadsCollected(s0: EngineState, stored: ReadonlyMap<string, UploadMessage>, now: number): Decision {
  const r0 = s0.open as OpenRound;
  const reason = r0.closing as CloseReason;
  const uploads = new Map(r0.uploads);
  const arrivals = new Map(r0.arrivals);
  for (const [id, m] of stored) {
    if (uploads.has(id) || !r0.assigned.has(id)) continue;
    uploads.set(id, m);
    // Through another gateway: its time is when this coordinator read it, at the latest.
    arrivals.set(id, now - r0.startedAt);
  }
  const r: OpenRound = { ...r0, uploads, arrivals };
  const effects: Effect[] = [];
  let missed = new Map(s0.missedInARow);
  for (const id of uploads.keys()) missed.delete(id);
  // A paced deadline missed counts as a miss; an upload before the configured deadline still makes the
  // client awaited again (lateUpload), so an honest slow client is never left out for good.
  if (reason !== 'complete') missed = countMisses({ ...s0, missedInARow: missed }, r, effects);
  const notWaitedFor = reason !== 'deadline' ? [...r.assigned].filter((id) => !uploads.has(id)) : [];
  const skipped = notWaitedFor.length > 0 ? { round: r.round, deadlineAt: r.deadlineAt, clients: new Set(notWaitedFor) } : null;
  const s: EngineState = { ...s0, open: r, missedInARow: missed, skipped };
  if (uploads.size === 0) {
    const why = 'no upload before the deadline';
    effects.push({ kind: 'log', level: 'warn', fields: { event: 'round_restarted', round: r.round, reason: why } });
    effects.push({ kind: 'emit', name: 'roundRestarted', payload: { round: r.round, reason: why } });
    effects.push({ kind: 'startRound' });
    return { state: { ...s, open: null, attempt: s.attempt + 1 }, effects };
  }
  const outcome = closeRound(s, r.round, r.assigned.size, [...uploads.entries()], effects);
  if (outcome.kind === 'refuse')
    return refuse(outcome.afterReset ? { ...s, refusedInARow: 0, refusedClients: new Set() } : s, r, outcome.clients, outcome.reason, effects);
  const { next, change, statistics, participants, examples, lossBefore, lossAfter, exponent } = outcome;
  const committedAt = new Date(now).toISOString();
  // The round's history carries its statistics, so a restarted server rebuilds the same scales, and
  // the key its clients were sampled with, so the sample is reproduced from the record.
  const sampling = samplingKey(s.rules.secret, r.round, r.attempt).toString('hex');
  const after = { ...afterOf(s.committed, next), robust: statistics, sampling };
  const pending = {
    next,
    change,
    statistics,
    participants,
    examples,
    lossBefore,
    lossAfter,
    exponent,
    pace: roundPace(
      [...arrivals].filter(([id]) => r.assigned.has(id)).map(([, ms]) => ms),
      r.assigned.size,
    ),
    reason,
  };
  effects.push({ kind: 'commit', state: next, record: { round: r.round, change, participants, examples, lossBefore, lossAfter, committedAt, after } });
  return { state: { ...s, open: { ...r, commit: pending } }, effects };
}

/**
 * A diverging round (huge g) would commit coefficients no replica can apply exactly: every client
 * would then fail at every later round. Refuse it; after three refusals in a row, stop the rounds.
 */
function refuse(s: EngineState, r: OpenRound, clients: readonly string[], why: string, effects: Effect[]): Decision {
  const refusedInARow = s.refusedInARow + 1;
  const refusedClients = new Set([...s.refusedClients, ...clients]);
  const reason = `the upload of ${clients.join(', ')}: ${why}`;
  effects.push({ kind: 'log', level: 'error', fields: { event: 'round_refused', round: r.round, reason } });
  effects.push({ kind: 'emit', name: 'roundRestarted', payload: { round: r.round, reason: `refused: ${reason}` } });
  let halted = s.halted;
  if (refusedInARow >= REFUSALS_BEFORE_HALT) {
    halted = `round ${r.round} was refused three times in a row: ${reason}`;
    effects.push({ kind: 'log', level: 'error', fields: { event: 'federation_halted', round: r.round, reason: halted } });
    effects.push({ kind: 'emit', name: 'halted', payload: { round: r.round, reason: halted } });
  } else {
    effects.push({ kind: 'startRound' });
  }
  return { state: { ...s, open: null, attempt: s.attempt + 1, refusedInARow, refusedClients, halted }, effects };
}

function finishedEffects(round: number): Effect[] {
  return [{ kind: 'log', level: 'info', fields: { event: 'finished', round } }, { kind: 'emit', name: 'finished', payload: { round } }, { kind: 'finalSync' }];
}

/** The store confirmed the closing round's commit: it is the committed state, and its clients hear of it. */
function commitDone(s: EngineState, r: OpenRound): Decision {
  const c = r.commit as NonNullable<OpenRound['commit']>;
  const paces = c.pace === null ? s.paces : [...s.paces, c.pace].slice(-s.rules.pacing.historyRounds);
  const next: EngineState = {
    ...s,
    committed: c.next,
    statistics: remember(s.statistics, c.statistics),
    paces,
    peakSumAbs: Math.max(s.peakSumAbs, sumAbs(c.next.coefficients)),
    open: null,
    attempt: 0,
    refusedInARow: 0,
    refusedClients: new Set(),
  };
  const result: ServerMessage = {
    type: 'result',
    round: r.round,
    participants: c.participants.length,
    examples: c.examples,
    lossBefore: c.lossBefore,
    lossAfter: c.lossAfter,
  };
  const bytes = roundBytes(s, r.bytes, c.participants.length);
  const { participants, examples, lossBefore, lossAfter } = c;
  const effects: Effect[] = [
    { kind: 'committed', changes: [{ round: r.round, change: c.change }], round: r.round },
    { kind: 'send', clients: participants, message: result, round: r.round },
    {
      kind: 'log',
      level: 'info',
      fields: { event: 'round_committed', round: r.round, reason: c.reason, participants, examples, lossBefore, lossAfter, exponent: c.exponent, bytes },
    },
    { kind: 'emit', name: 'roundCommitted', payload: { round: r.round, participants, examples, lossBefore, lossAfter, bytes } },
    ...(isFinished(next) ? finishedEffects(next.committed.round) : [{ kind: 'startRound' } as const]),
  ];
  return { state: next, effects };
}

/** Rounds another gateway committed: the state from the store, results to the clients connected here. */
function commitsRead(s: EngineState, e: Extract<EngineEvent, { type: 'commitsRead' }>): Decision {
  const { state, records } = e;
  // The state moved meanwhile (this gateway committed), or it is committing: read again later.
  if (state.round <= s.committed.round || records[0]?.round !== s.committed.round + 1 || s.open?.closing) return { state: s, effects: [] };
  const effects: Effect[] = [];
  const open = s.open;
  const ended = open !== null && open.round <= state.round;
  if (ended && open.timerArmed) effects.push({ kind: 'cancelTimer' });
  const c = new Float64Array(s.committed.coefficients);
  let statistics = s.statistics;
  let peakSumAbs = s.peakSumAbs;
  for (const record of records) {
    statistics = remember(statistics, record.after?.robust);
    for (let j = 0; j < c.length; j++) c[j] += record.change[j];
    peakSumAbs = Math.max(peakSumAbs, sumAbs(c));
  }
  const next: EngineState = {
    ...s,
    committed: state,
    statistics,
    peakSumAbs,
    open: ended ? null : open,
    attempt: 0,
    refusedInARow: 0,
    refusedClients: new Set(),
  };
  effects.push({ kind: 'committed', changes: records.map((x) => ({ round: x.round, change: x.change })), round: state.round });
  for (const x of records) {
    const result: ServerMessage = {
      type: 'result',
      round: x.round,
      participants: x.participants.length,
      examples: x.examples,
      lossBefore: x.lossBefore,
      lossAfter: x.lossAfter,
    };
    effects.push({ kind: 'send', clients: x.participants, message: result, round: x.round });
    const bytes = roundBytes(s, open && open.round === x.round ? open.bytes : new Map(), x.participants.length);
    effects.push({
      kind: 'log',
      level: 'info',
      fields: { event: 'round_committed', round: x.round, by: 'another gateway', participants: x.participants, examples: x.examples },
    });
    effects.push({
      kind: 'emit',
      name: 'roundCommitted',
      payload: { round: x.round, participants: x.participants, examples: x.examples, lossBefore: x.lossBefore, lossAfter: x.lossAfter, bytes },
    });
  }
  if (isFinished(next)) effects.push(...finishedEffects(next.committed.round));
  return { state: next, effects };
}

export function decide(s: EngineState, e: EngineEvent): Decision {
  const none: Decision = { state: s, effects: [] };
  const r = s.open;
  switch (e.type) {
    case 'presenceRead':
      return presenceRead(s, e.connected, e.now);
    case 'openRoundSaved': {
      if (!same(r, e.round, e.attempt) || r.announced) return none;
      return { state: withOpen(s, { announced: true }), effects: roundStarted(s, r) };
    }
    case 'openRoundSaveFailed': {
      if (!same(r, e.round, e.attempt) || r.announced) return none;
      return {
        state: { ...s, open: null },
        effects: [
          ...(r.timerArmed ? [{ kind: 'cancelTimer' } as const] : []),
          { kind: 'log', level: 'warn', fields: { event: 'store_unavailable', error: e.error } },
        ],
      };
    }
    case 'roundAdopted': {
      const x = e.record;
      const open: OpenRound = {
        round: x.round,
        attempt: x.attempt,
        assigned: new Set(x.assigned),
        uploads: new Map(),
        arrivals: new Map(),
        bytes: new Map(),
        startedAt: x.deadlineAt - s.rules.config.deadlineMs,
        deadlineAt: x.deadlineAt,
        paced: false,
        timerArmed: false,
        announced: true,
        closing: null,
        commit: null,
      };
      const next: EngineState = { ...s, open, attempt: x.attempt };
      return { state: next, effects: [...(r?.timerArmed ? [{ kind: 'cancelTimer' } as const] : []), ...roundStarted(next, open, 'the coordinator')] };
    }
    case 'uploadAccepted': {
      // An upload resets the client's misses, whichever round it was for.
      const missedInARow = new Map(s.missedInARow);
      missedInARow.delete(e.clientId);
      const next = { ...s, missedInARow };
      if (!same(r, e.round, e.attempt) || r.commit !== null || r.uploads.has(e.clientId)) return { state: next, effects: [] };
      return {
        state: withOpen(next, { uploads: new Map(r.uploads).set(e.clientId, e.upload), arrivals: new Map(r.arrivals).set(e.clientId, e.now - r.startedAt) }),
        effects: [],
      };
    }
    case 'uploadSettled':
      if (!e.coordinator || !same(r, e.round, e.attempt) || r.closing) return none;
      return { state: s, effects: [checkAllIn(s, r, 'pace')] };
    case 'allInChecked':
      if (!e.coordinator || !same(r, e.round, e.attempt) || r.closing) return none;
      if (e.allIn) return startClosing(s, 'complete');
      return e.then === 'pace' ? pace(s, r) : none;
    case 'lateUpload': {
      // An upload for a round that closed without waiting for its client, arriving before that round's
      // deadline: the client would have made it, so rounds wait for it again (the upload stays late).
      const k = s.skipped;
      if (!k || k.round !== e.round || !k.clients.has(e.clientId)) return none;
      const clients = new Set(k.clients);
      clients.delete(e.clientId);
      const next = { ...s, skipped: { ...k, clients } };
      if (e.now > k.deadlineAt) return { state: next, effects: [] };
      const missedInARow = new Map(s.missedInARow);
      missedInARow.delete(e.clientId);
      return {
        state: { ...next, missedInARow },
        effects: [{ kind: 'log', level: 'info', fields: { event: 'client_awaited_again', round: e.round, clientId: e.clientId } }],
      };
    }
    case 'timerFired':
      if (!e.coordinator || !same(r, e.round, e.attempt) || r.closing) return none;
      return startClosing(withOpen(s, { timerArmed: false }), e.reason);
    case 'uploadsCollected':
      if (!same(r, e.round, e.attempt) || r.closing === null || r.commit !== null) return none;
      return uploadsCollected(s, e.stored, e.now);
    case 'collectFailed':
      if (!same(r, e.round, e.attempt) || r.closing === null || r.commit !== null) return none;
      // Read again at the next look at the store, which arms the deadline anew.
      return {
        state: withOpen(s, { closing: null, timerArmed: false }),
        effects: [{ kind: 'log', level: 'warn', fields: { event: 'store_unavailable', round: r.round, error: e.error } }],
      };
    case 'commitDone':
      if (!r || r.round !== e.round || r.commit === null) return none;
      return commitDone(s, r);
    case 'commitFailed': {
      if (!r || r.round !== e.round || r.commit === null) return none;
      const next = { ...s, open: null };
      // Another coordinator committed this round: take its commit over.
      if (e.stale)
        return {
          state: next,
          effects: [
            { kind: 'log', level: 'warn', fields: { event: 'commit_superseded', round: e.round, error: e.error } },
            ...(s.closed ? [] : [{ kind: 'follow' } as const]),
          ],
        };
      return {
        state: next,
        effects: [
          { kind: 'log', level: 'error', fields: { event: 'commit_failed', round: e.round, error: e.error } },
          ...(s.closed ? [] : [{ kind: 'startRound' } as const]),
        ],
      };
    }
    case 'commitsRead':
      return commitsRead(s, e);
    case 'followed': {
      if (!r) return none;
      // No longer (or not) the coordinator: another gateway's deadline rules.
      if (!e.coordinator) return r.timerArmed ? { state: withOpen(s, { timerArmed: false }), effects: [{ kind: 'cancelTimer' }] } : none;
      if (r.closing) return none;
      const arm: Effect[] = r.timerArmed ? [] : [{ kind: 'armTimer', round: r.round, attempt: r.attempt, reason: 'deadline', at: r.deadlineAt }];
      return { state: withOpen(s, { timerArmed: true }), effects: [...arm, checkAllIn(s, r, 'none')] };
    }
    case 'bytes': {
      const round = e.round ?? r?.round ?? s.committed.round + 1;
      const effects: Effect[] = [{ kind: 'emit', name: 'bytes', payload: { clientId: e.clientId, direction: e.direction, bytes: e.bytes, round } }];
      if (!r || r.round !== round || e.clientId === null || !r.assigned.has(e.clientId)) return { state: s, effects };
      const b = r.bytes.get(e.clientId) ?? { up: 0, down: 0 };
      const counted = { ...b, [e.direction]: b[e.direction] + e.bytes };
      return { state: withOpen(s, { bytes: new Map(r.bytes).set(e.clientId, counted) }), effects };
    }
    case 'closed':
      return { state: { ...withOpen(s, { timerArmed: false }), closed: true }, effects: r?.timerArmed ? [{ kind: 'cancelTimer' }] : [] };
  }
}
