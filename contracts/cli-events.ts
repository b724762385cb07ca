// The JSON lines the CLI prints with --json, one event object per line: what a supervising program
// follows a command by. `fedkseed simulate` reads every client's lines through parseClientEvent;
// scripts and tests read the others. The emitters type their lines with these schemas.
import * as z from 'zod/mini';
import type { ClientBytes } from '../protocol/wire-bytes';
import { parseJsonLine } from './parse';

const count = () => z.number().check(z.int(), z.nonnegative());
/** JSON has no NaN: a loss that was not finite is null. */
const lossOrNull = () => z.nullable(z.number());

/** JSON has no NaN: a missing loss is null. */
export function finiteOrNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

/** A dataset line that could not be read (train, eval, simulate). */
export const dataProblemEventSchema = z.object({ event: z.literal('data-problem'), file: z.string(), line: count(), message: z.string() });
export type DataProblemEvent = z.infer<typeof dataProblemEventSchema>;

// ---- fedkseed client --json -----------------------------------------------------------------------

export const clientBytesSchema = z.object({ frameUp: count(), frameDown: count(), socketUp: count(), socketDown: count() });
// The schema's output must be the protocol's ClientBytes.
const _bytesMatch: (b: z.infer<typeof clientBytesSchema>) => ClientBytes = (b) => b;
void _bytesMatch;

export const clientEventSchema = z.discriminatedUnion('event', [
  z.object({
    event: z.literal('start'),
    clientId: z.string(),
    parameters: count(),
    train: count(),
    heldOut: count(),
    kernel: z.string(),
    provider: z.string(),
    resumedRound: count(),
  }),
  z.object({ event: z.literal('connected'), attempt: count() }),
  z.object({ event: z.literal('welcome'), committedRound: count(), rounds: count(), k: count(), tau: count(), sampling: z.string() }),
  z.object({ event: z.literal('disconnected'), code: z.number(), reason: z.string(), retryInMs: z.nullable(z.number()) }),
  z.object({ event: z.literal('round'), round: count(), steps: count(), changedSeeds: count() }),
  z.object({ event: z.literal('step'), round: count(), step: count(), steps: count(), seed: count(), g: lossOrNull(), loss: lossOrNull() }),
  z.object({ event: z.literal('uploaded'), round: count(), pairs: count(), bytes: count() }),
  z.object({ event: z.literal('ack'), round: count(), status: z.string(), digest: z.string() }),
  z.object({ event: z.literal('synced'), round: count(), digest: z.string() }),
  z.object({ event: z.literal('result'), round: count(), participants: count(), lossBefore: lossOrNull(), lossAfter: lossOrNull() }),
  z.object({ event: z.literal('server-error'), code: z.number(), name: z.string(), message: z.string() }),
  /** The federation refused the replica's digest, or holds fewer rounds: rebuilt from the base model, it rejoins from round 0. */
  z.object({ event: z.literal('resync'), round: count(), message: z.string() }),
  z.object({ event: z.literal('done'), round: count(), digest: z.string(), checkpoint: z.string(), bytes: clientBytesSchema }),
  z.object({ event: z.literal('stopped'), round: count(), checkpoint: z.nullable(z.string()) }),
]);
export type ClientEvent = z.infer<typeof clientEventSchema>;
export type ClientEventName = ClientEvent['event'];
export const clientEventNames = [
  'start',
  'connected',
  'welcome',
  'disconnected',
  'round',
  'step',
  'uploaded',
  'ack',
  'synced',
  'result',
  'server-error',
  'resync',
  'done',
  'stopped',
] as const satisfies readonly ClientEventName[];
// Every client event is named above.
const _everyName: [Exclude<ClientEventName, (typeof clientEventNames)[number]>] extends [never] ? true : never = true;
void _everyName;

/** A client event from one line of output, or null for anything else (warnings, blank lines). */
export function parseClientEvent(line: string): ClientEvent | null {
  return parseJsonLine(clientEventSchema, line);
}

// ---- fedkseed train --json ------------------------------------------------------------------------

export const trainEventSchema = z.discriminatedUnion('event', [
  z.object({ event: z.literal('start'), model: z.string(), parameters: count(), kernel: z.string(), provider: z.string(), train: count(), heldOut: count() }),
  z.object({
    event: z.literal('step'),
    step: count(),
    seed: count(),
    g: lossOrNull(),
    lossPlus: lossOrNull(),
    lossMinus: lossOrNull(),
    skipped: z.boolean(),
    ms: z.number(),
  }),
  z.object({
    event: z.literal('eval'),
    step: count(),
    loss: z.number(),
    perplexity: z.number(),
    tokens: count(),
    /** With --measures: next-token top-1 accuracy and next-line exact match (code) or Rouge-L (instruction data), 0–1. */
    accuracy: z.optional(z.nullable(z.number())),
    exactMatch: z.optional(z.nullable(z.number())),
    rougeL: z.optional(z.nullable(z.number())),
  }),
  z.object({
    event: z.literal('done'),
    steps: count(),
    skipped: count(),
    /** Null when nothing was held out. */
    heldOutBefore: z.nullable(z.number()),
    heldOutAfter: z.nullable(z.number()),
    msPerStep: z.number(),
    /** The best evaluated point, which `checkpoint` holds (null without held-out data: it holds the last). */
    best: z.nullable(z.object({ step: count(), loss: z.number() })),
    checkpoint: z.string(),
    /** The coefficients after the last step, when they differ from the best. */
    lastCheckpoint: z.nullable(z.string()),
    exported: z.nullable(z.string()),
    stopped: z.boolean(),
    /** Why the run stopped early because it diverged (the setting to change is named), else null. */
    diverged: z.nullable(z.string()),
  }),
  z.object({ event: z.literal('diverged'), step: count(), reason: z.string() }),
  dataProblemEventSchema,
]);
export type TrainEvent = z.infer<typeof trainEventSchema>;

// ---- fedkseed simulate --json ---------------------------------------------------------------------

/** The global model after one round, as measured by the simulation's evaluator (report.json holds them all). */
export const roundReportSchema = z.object({
  /** 0: the base model, before any round. */
  round: count(),
  /** Held-out loss of the global model after this round (null when it could not be measured). */
  heldOutLoss: z.nullable(z.number()),
  perplexity: z.nullable(z.number()),
  heldOutTokens: count(),
  /** SHA-256 of the evaluated replica (base + committed coefficients). */
  digest: z.string(),
  /** Digest each client reported after syncing to this round. */
  clientDigests: z.readonly(z.record(z.string(), z.string())),
  /** Every client digest equals the evaluator's; null when no client reported one. */
  digestsAgree: z.nullable(z.boolean()),
  participants: z.readonly(z.array(z.string())),
  examples: count(),
  /** Participants' mean loss on their own evaluation examples before/after their local steps. */
  clientLossBefore: z.nullable(z.number()),
  clientLossAfter: z.nullable(z.number()),
  bytes: z.object({
    up: count(),
    down: count(),
    perClient: z.readonly(z.record(z.string(), z.object({ up: count(), down: count() }))),
    /** What FedAvg would have moved for the same participants (2 × 4·d each). */
    fedAvg: count(),
  }),
  cumulativeBytes: count(),
  cumulativeFedAvgBytes: count(),
  /** From the round's start to its commit. */
  seconds: z.number(),
  evalMs: z.number(),
});
export type RoundReport = z.infer<typeof roundReportSchema>;
export type RoundBytesReport = RoundReport['bytes'];

export const simulateEventSchema = z.union([
  dataProblemEventSchema,
  z.object({
    event: z.literal('prepared'),
    parameters: count(),
    train: count(),
    heldOut: count(),
    evalExamples: count(),
    split: z.enum(['group', 'dirichlet']),
    note: z.nullable(z.string()),
    clients: z.readonly(z.array(z.object({ id: z.string(), examples: count(), groups: z.readonly(z.array(z.string())) }))),
    unassigned: z.object({ groups: z.readonly(z.array(z.string())), examples: count() }),
  }),
  z.object({ event: z.literal('server'), url: z.string() }),
  z.extend(roundReportSchema, { event: z.literal('round') }),
  /** A client's event (its own fields; step events are left out), named by the client. */
  z.looseObject({ event: z.literal('client'), id: z.string(), clientEvent: z.enum(clientEventNames) }),
  z.object({ event: z.literal('client-exit'), id: z.string(), code: z.nullable(z.number()), signal: z.nullable(z.string()) }),
  z.object({
    event: z.literal('done'),
    status: z.enum(['completed', 'interrupted', 'failed']),
    error: z.nullable(z.string()),
    rounds: count(),
    heldOutBefore: z.nullable(z.number()),
    heldOutAfter: z.nullable(z.number()),
    bytes: count(),
    fedAvgBytes: count(),
    replicasIdentical: z.nullable(z.boolean()),
    report: z.string(),
    html: z.string(),
    checkpoint: z.nullable(z.string()),
  }),
]);
export type SimulateEvent = z.infer<typeof simulateEventSchema>;
