// Runs as the extension keeps them: a summary with the key figures (listed in the sidebar, sent to
// the webviews), the chart series, and what a resume needs. A run's record is a JSON file in the
// extension's global storage beside its checkpoint; it is checked against these schemas when read.
import * as z from 'zod/mini';
import { parseWith, type ParseResult } from './parse';
import { seedProbabilitiesSchema, startTrainingParamsSchema, weightsStateSchema } from './trainer-payloads';
import { serverProcessSpecSchema } from './server-process';

const nonNegInt = () => z.number().check(z.int(), z.nonnegative());
const nonNeg = () => z.number().check(z.nonnegative());

const point = z.tuple([z.number(), z.number()]);
export const roundBytesSchema = z.object({ round: z.number(), up: z.number(), down: z.number(), fedAvg: z.number() });
export type RoundBytes = z.infer<typeof roundBytesSchema>;

/** A run's series for the dashboard charts (x: cumulative local step). */
export const runHistorySchema = z.object({
  stepLoss: z.array(point),
  heldOut: z.array(point),
  /** Held-out next-token top-1 accuracy (0–1) at each evaluation; absent in records made before it was measured. */
  accuracy: z.optional(z.array(point)),
  /** Held-out next-line exact match (code) or Rouge-L (instruction data), 0–1, at each evaluation. */
  generation: z.optional(z.array(point)),
  /** What `generation` measures. */
  generationMetric: z.optional(z.enum(['exactMatch', 'rougeL'])),
  rounds: z.array(roundBytesSchema),
  seeds: z.nullable(seedProbabilitiesSchema),
});
export type RunHistory = z.infer<typeof runHistorySchema>;
export const emptyHistory: RunHistory = { stepLoss: [], heldOut: [], rounds: [], seeds: null };

/** An Evaluate of the held-out split, recorded with the run whose weights it scored. */
export const evaluationRecordSchema = z.object({
  at: z.number(),
  loss: z.number(),
  perplexity: z.number(),
  examples: nonNegInt(),
  heldOutExamples: nonNegInt(),
  tokens: nonNegInt(),
  weights: weightsStateSchema,
  /** Held-out top-1 accuracy and next-line exact match (or Rouge-L), 0–1; absent in older records. */
  accuracy: z.optional(z.nullable(z.number())),
  generation: z.optional(z.nullable(z.number())),
  generationMetric: z.optional(z.enum(['exactMatch', 'rougeL'])),
});
export type EvaluationRecord = z.infer<typeof evaluationRecordSchema>;

export const runKinds = ['local', 'federation', 'evaluation'] as const;
export type RunKind = (typeof runKinds)[number];
export const runStates = ['starting', 'running', 'stopping', 'finished', 'stopped', 'failed', 'interrupted'] as const;
export type RunState = (typeof runStates)[number];

export const runSummarySchema = z.object({
  id: z.string().check(z.regex(/^[A-Za-z0-9-]+$/)),
  kind: z.enum(runKinds),
  state: z.enum(runStates),
  /** "Local training", "Local federation", "Federation at wss://…", "Evaluations of the base model". */
  title: z.string(),
  startedAt: z.number(),
  endedAt: z.nullable(z.number()),
  /** The model's name (its folder or repository, not model.onnx) and identity (SHA-256). */
  model: z.string(),
  modelIdentity: z.string(),
  server: z.nullable(z.string()),
  /** Local runs: steps done of `steps`; federations: the cumulative local step, `steps` τ. */
  step: nonNegInt(),
  steps: nonNegInt(),
  committedRound: nonNegInt(),
  rounds: nonNegInt(),
  loss: z.nullable(z.number()),
  heldOutBaseline: z.nullable(z.number()),
  heldOutLast: z.nullable(z.number()),
  /** Bytes of the committed rounds as the server counts them, FedAvg's for the same rounds, and connection overhead. */
  bytes: z.object({ rounds: nonNeg(), fedAvg: nonNeg(), overhead: nonNeg() }),
  evaluations: z.array(evaluationRecordSchema),
  /** A checkpoint of the run's weights exists. */
  checkpoint: z.boolean(),
  error: z.nullable(z.string()),
  /** When a run that was running ended with the window (reload, close). */
  interruptedAt: z.optional(z.nullable(z.number())),
});
export type RunSummary = z.infer<typeof runSummarySchema>;

/** What resuming a run needs besides its checkpoint. */
export const runResumeSchema = z.union([
  z.object({ kind: z.literal('local'), params: startTrainingParamsSchema }),
  z.object({
    kind: z.literal('federation'),
    url: z.string(),
    /** A local federation: the server process's spec (its store resumes the federation). */
    localServer: z.nullable(serverProcessSpecSchema),
  }),
]);
export type RunResume = z.infer<typeof runResumeSchema>;

export const runRecordSchema = z.object({
  version: z.literal(1),
  summary: runSummarySchema,
  history: runHistorySchema,
  resume: z.nullable(runResumeSchema),
  /** The workspace the run belongs to (its first folder or workspace file), for resuming in the same window. */
  workspace: z.nullable(z.string()),
});
export type RunRecord = z.infer<typeof runRecordSchema>;

export const parseRunRecord = (input: unknown): ParseResult<RunRecord> => parseWith(runRecordSchema, input);

/** What the extension reads of a checkpoint file: whose model it is and where it stands. */
export const checkpointHeaderSchema = z.object({
  baseModel: z.string(),
  steps: z.optional(nonNegInt()),
  round: z.optional(nonNegInt()),
});
export type CheckpointHeader = z.infer<typeof checkpointHeaderSchema>;
export const parseCheckpointHeader = (input: unknown): ParseResult<CheckpointHeader> => parseWith(checkpointHeaderSchema, input);
