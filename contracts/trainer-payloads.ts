// Payloads of the extension ↔ trainer protocol, as zod schemas with their TypeScript types. Pure data
// (no Node or VS Code imports), so the webviews can validate the status they are shown with the same
// schema the trainer process sends it with.
import * as z from 'zod/mini';
import { parseWith, type ParseResult } from './parse';
import { GENERATORS, PERTURBATION_SHAPES } from '../protocol/messages';
import { hyperparameter } from './hyperparameters';

const nonNegInt = () => z.number().check(z.int(), z.nonnegative());
const positiveInt = () => z.number().check(z.int(), z.positive());
const positive = () => z.number().check(z.positive());
const finiteOrNull = () => z.nullable(z.number());

export const executionProviders = ['auto', 'cpu', 'webgpu', 'cuda'] as const;
export type ExecutionProviderSetting = (typeof executionProviders)[number];

/** How the WebGPU engine computes a forward's products: as the model has them, or float16 where the adapter has it. */
export const forwardPrecisions = ['float32', 'float16'] as const;
export type ForwardPrecision = (typeof forwardPrecisions)[number];

// ---- initialize -------------------------------------------------------------------------------

export const initializeParamsSchema = z.object({
  /** .onnx file or a folder holding model.onnx; empty: the bundled model. */
  model: z.optional(z.string()),
  tokenizer: z.optional(z.string()),
  provider: z.enum(executionProviders),
  /** onnxruntime intra-op threads; 0: all cores. */
  threads: nonNegInt(),
  kernel: z.enum(['auto', 'wasm-simd', 'js']),
  /** Products of the WebGPU engine's forwards (absent: the engine's default, float32). */
  forwardPrecision: z.optional(z.enum(forwardPrecisions)),
  /** Memory budget of the trainer ('12G', '7500M'; powers of 1024); absent or empty: 80% of physical memory. */
  maxMemory: z.optional(z.string()),
});
export type InitializeParams = z.infer<typeof initializeParamsSchema>;

export const initializeResultSchema = z.object({
  parameters: nonNegInt(),
  provider: z.string(),
  kernel: z.string(),
  /** The products' precision in use: float16 only on the WebGPU engine over an adapter with shader-f16. */
  forwardPrecision: z.optional(z.enum(forwardPrecisions)),
  modelPath: z.string(),
  /** SHA-256 of the base model (hex): what a federation checks. */
  modelIdentity: z.string(),
});
export type InitializeResult = z.infer<typeof initializeResultSchema>;

// ---- the weights the engine holds ----------------------------------------------------------------

/**
 * What the engine's weights are: the base model, or fine-tuned by a local run (after `steps`) or a
 * federation (the replica after committed round `round`). `runId` names the extension's run they came
 * from; `restored`: reloaded from that run's checkpoint rather than trained in this process.
 */
export const weightsStateSchema = z.object({
  kind: z.enum(['base', 'local', 'federation']),
  steps: nonNegInt(),
  round: nonNegInt(),
  runId: z.nullable(z.string()),
  restored: z.boolean(),
});
export type WeightsState = z.infer<typeof weightsStateSchema>;
export const baseWeights: WeightsState = { kind: 'base', steps: 0, round: 0, runId: null, restored: false };

/** The weights in words: "the base model (not fine-tuned)", "fine-tuned after step 200", "fine-tuned after round 4". */
export function describeWeights(w: WeightsState): string {
  if (w.kind === 'base') return 'the base model (not fine-tuned)';
  return w.kind === 'local' ? `fine-tuned after step ${w.steps}` : `fine-tuned after round ${w.round}`;
}

// ---- data shared by evaluate / training / federation --------------------------------------------

export const dataSpecSchema = z.object({
  /** Dataset file or folder (JSONL, JSON, text/code files). */
  path: z.string().check(z.minLength(1)),
  /** For folders of text/code: globs of files to read. */
  include: z.optional(z.array(z.string())),
  heldOutFraction: z.number().check(z.gte(0), z.lt(1)),
  seqLen: hyperparameter('seqLen'),
});
export type DataSpec = z.infer<typeof dataSpecSchema>;

/** Evaluation scores the held-out split of `data` (the training split rule at its heldOutFraction, which must be above 0). */
export const evaluateParamsSchema = z.object({
  data: dataSpecSchema,
  batchSize: hyperparameter('batchSize'),
  maxExamples: positiveInt(),
});
export type EvaluateParams = z.infer<typeof evaluateParamsSchema>;

export const evaluateResultSchema = z.object({
  loss: z.number(),
  perplexity: z.number(),
  tokens: nonNegInt(),
  /** Held-out examples scored (the first maxExamples of the split, as training's evaluations). */
  examples: nonNegInt(),
  /** Examples in the held-out split. */
  heldOutExamples: nonNegInt(),
  /** The weights scored. */
  weights: weightsStateSchema,
  /** Next-token top-1 accuracy on the same examples (0–1); null when not measured. */
  accuracy: z.optional(z.nullable(z.number().check(z.gte(0), z.lte(1)))),
  /** Code: share of next lines completed exactly; instruction data: mean Rouge-L (see generationMetric). */
  generation: z.optional(z.nullable(z.number().check(z.gte(0), z.lte(1)))),
  generationMetric: z.optional(z.enum(['exactMatch', 'rougeL'])),
});
export type EvaluateResult = z.infer<typeof evaluateResultSchema>;

// ---- local training ------------------------------------------------------------------------------

export const startTrainingParamsSchema = z.object({
  data: dataSpecSchema,
  steps: positiveInt(),
  k: hyperparameter('k'),
  federationSeed: hyperparameter('federationSeed'),
  epsilon: hyperparameter('epsilon'),
  eta: hyperparameter('eta'),
  /** How z is scaled tensor by tensor (absent: 'isotropic', as runs recorded before shapes). */
  shape: z.optional(z.enum(PERTURBATION_SHAPES)),
  /** How z is generated (absent: 'iid', as runs recorded before generators). */
  generator: z.optional(z.enum(GENERATORS)),
  /** Which weights the run leaves: its best evaluated point (default) or its last step. */
  keep: z.optional(z.enum(['best', 'last'])),
  batchSize: hyperparameter('batchSize'),
  /** Held-out evaluation every this many steps; 0: before and after only. */
  evalEvery: nonNegInt(),
  evalExamples: positiveInt(),
  /** Where the coefficients checkpoint is written as the run progresses and when it ends. */
  checkpointPath: z.optional(z.string()),
  /** Checkpoint every this many steps (besides the evaluations and the end); 0 or absent: only those. */
  checkpointEvery: z.optional(nonNegInt()),
  /** Continue the run of this checkpoint (same K, seed and η) from its step up to `steps` in all. */
  resumeFrom: z.optional(z.string()),
  /** The extension's run these weights belong to (echoed in `weights`). */
  runId: z.optional(z.string()),
});
export type StartTrainingParams = z.infer<typeof startTrainingParamsSchema>;

export const trainingResultSchema = z.object({
  stepsRun: nonNegInt(),
  skipped: nonNegInt(),
  /** Null when the run had no held-out data (held-out share 0): nothing was evaluated. */
  heldOutBefore: z.nullable(z.number()),
  heldOutAfter: z.nullable(z.number()),
  stopped: z.boolean(),
  checkpointPath: z.nullable(z.string()),
  /** Steps of the run in all, those before a resume included. */
  totalSteps: nonNegInt(),
  /**
   * The evaluated point with the lowest held-out loss (the start counts): the weights the trainer holds
   * after the run and its checkpoint. Absent or null without held-out data.
   */
  best: z.optional(z.nullable(z.object({ step: nonNegInt(), loss: z.number() }))),
  /** Why the run stopped early because it diverged, else absent or null. */
  diverged: z.optional(z.nullable(z.string())),
  weights: weightsStateSchema,
});
export type TrainingResult = z.infer<typeof trainingResultSchema>;

/** How a run changed the held-out loss, in words, for the status line and the closing message. */
export function heldOutChange(r: Pick<TrainingResult, 'heldOutBefore' | 'heldOutAfter' | 'best' | 'totalSteps' | 'stepsRun' | 'diverged'>): string {
  if (r.heldOutBefore === null || r.heldOutAfter === null) return 'no held-out data, not evaluated';
  const change = `held-out loss ${r.heldOutBefore.toFixed(4)} → ${r.heldOutAfter.toFixed(4)}`;
  const diverged = r.diverged ? `the run diverged (${r.diverged}; lower the learning rate); ` : '';
  const best = r.best;
  if (!best || best.step === r.totalSteps) return `${diverged}${change}`;
  if (best.step === r.totalSteps - r.stepsRun) return `${diverged}${change}: it never went below the start, so the starting weights are kept`;
  return `${diverged}${change}; the best, ${best.loss.toFixed(4)} at step ${best.step}, is kept`;
}

// ---- federation client ---------------------------------------------------------------------------

export const joinFederationParamsSchema = z.object({
  url: z.string().check(z.regex(/^wss?:\/\//, 'must start with ws:// or wss://')),
  token: z.string(),
  clientId: z.string().check(z.minLength(1)),
  data: dataSpecSchema,
  batchSize: hyperparameter('batchSize'),
  heldOutExamples: positiveInt(),
  clientSeed: nonNegInt(),
  /** Where the replica is checkpointed after every round it syncs. */
  checkpointPath: z.optional(z.string()),
  /** Rejoin from this checkpoint's replica and round (the server sends only what followed it). */
  resumeFrom: z.optional(z.string()),
  /** Connection attempts before giving up while never connected (default 3); after a welcome, 8 in a row. */
  connectAttempts: z.optional(positiveInt()),
  runId: z.optional(z.string()),
});
export type JoinFederationParams = z.infer<typeof joinFederationParamsSchema>;

export const federationResultSchema = z.object({
  finalRound: nonNegInt(),
  digest: z.string(),
  stopped: z.boolean(),
  weights: weightsStateSchema,
});

/** Why a federation could not be reached: the data of a `connectionFailed` error. */
export const connectionCauses = ['refused', 'dns', 'tls', 'auth', 'timeout', 'closed', 'other'] as const;
export type ConnectionCause = (typeof connectionCauses)[number];
export const connectionFailureSchema = z.object({
  kind: z.literal('connection'),
  cause: z.enum(connectionCauses),
  url: z.string(),
  attempts: nonNegInt(),
  /** The last error as the socket or the server gave it. */
  detail: z.string(),
});
export type ConnectionFailure = z.infer<typeof connectionFailureSchema>;

// ---- checkpoints ---------------------------------------------------------------------------------

/** Loads a run's checkpoint into the engine (base + its coefficients), replacing whatever it held. */
export const loadCheckpointParamsSchema = z.object({
  path: z.string().check(z.minLength(1)),
  runId: z.nullable(z.string()),
});
export type LoadCheckpointParams = z.infer<typeof loadCheckpointParamsSchema>;
/** Returns the engine to the base model. */
export const resetWeightsParamsSchema = z.object({});
export type ResetWeightsParams = z.infer<typeof resetWeightsParamsSchema>;
export const weightsResultSchema = z.object({ weights: weightsStateSchema });
export type WeightsResult = z.infer<typeof weightsResultSchema>;
export type FederationResult = z.infer<typeof federationResultSchema>;

// ---- completions ---------------------------------------------------------------------------------

export const completionSources = ['current', 'base'] as const;
export type CompletionSource = (typeof completionSources)[number];
export const completionStops = ['line', 'block', 'none'] as const;
export const completionFinishes = ['stop', 'eos', 'max-tokens', 'max-length', 'cancelled'] as const;

export const samplingSchema = z.union([
  z.object({ mode: z.literal('greedy') }),
  z.object({ mode: z.literal('sample'), temperature: positive(), topP: z.number().check(z.gt(0), z.lte(1)), seed: nonNegInt() }),
]);
export type SamplingSettings = z.infer<typeof samplingSchema>;

/**
 * A completion of the text before the cursor, from the engine's current weights (what is being trained or
 * federated, or a loaded checkpoint) or the base model. A JSON-RPC cancellation ends it between two tokens.
 */
export const completeParamsSchema = z.object({
  /** Text before the cursor (its last tokens that fit the context are the prompt). */
  prefix: z.string().check(z.maxLength(200_000)),
  source: z.enum(completionSources),
  maxTokens: z.number().check(z.int(), z.positive(), z.lte(512)),
  sampling: samplingSchema,
  stop: z.enum(completionStops),
  /** Decode over a KV cache when the model allows one (default true; false for benchmarks). */
  useCache: z.optional(z.boolean()),
});
export type CompleteParams = z.infer<typeof completeParamsSchema>;

export const completeResultSchema = z.object({
  text: z.string(),
  tokens: nonNegInt(),
  finish: z.enum(completionFinishes),
  /** ms from the request to the first token chosen; null when none was. */
  firstTokenMs: z.nullable(z.number()),
  totalMs: z.number(),
  promptTokens: nonNegInt(),
  source: z.enum(completionSources),
  /** The weights it came from; null for the base model. */
  weights: z.nullable(weightsStateSchema),
  /** How it decoded: over the model's cache, a companion graph's cache, or without one. */
  decoder: z.string(),
  modelPath: z.string(),
});
export type CompleteResult = z.infer<typeof completeResultSchema>;

/** Where a completion came from, in words: "fine-tuned after step 200 (tiny-code-lm)". */
export function describeCompletionSource(r: Pick<CompleteResult, 'source' | 'weights'>): string {
  return r.source === 'base' || !r.weights ? describeWeights(baseWeights) : describeWeights(r.weights);
}

// ---- export / stop -------------------------------------------------------------------------------

export const exportModelParamsSchema = z.object({ out: z.string().check(z.minLength(1)) });
export type ExportModelParams = z.infer<typeof exportModelParamsSchema>;
export const exportModelResultSchema = z.object({
  path: z.string(),
  externalDataPath: z.nullable(z.string()),
  weightBytes: nonNegInt(),
  copied: z.array(z.string()),
  /** The weights written. */
  weights: weightsStateSchema,
});
export type ExportModelResult = z.infer<typeof exportModelResultSchema>;

export const emptySchema = z.object({});
export type Empty = z.infer<typeof emptySchema>;
export const stopResultSchema = z.object({ stopped: z.boolean() });
export type StopResult = z.infer<typeof stopResultSchema>;

// ---- notifications -------------------------------------------------------------------------------

export const connectionStates = ['idle', 'loading', 'training', 'connecting', 'connected', 'reconnecting', 'stopping', 'finished', 'stopped', 'error'] as const;
export type ConnectionState = (typeof connectionStates)[number];

/**
 * A round's bytes are the frames the server counts for it: from the round's assignment to its result
 * (the result excluded), for a client sampled in it. Totals add the connection overhead (hello,
 * welcome, results, syncs).
 */
export const byteCountersSchema = z.object({
  upRound: nonNegInt(),
  downRound: nonNegInt(),
  upTotal: nonNegInt(),
  downTotal: nonNegInt(),
  /** What FedAvg would have moved for this client: the model down and up, float32, per round. */
  fedAvgRound: nonNegInt(),
  fedAvgTotal: nonNegInt(),
});
export type ByteCounters = z.infer<typeof byteCountersSchema>;

/** The request a trainer is working on (completions run beside any of them and are not jobs). */
export const trainerJobs = ['evaluation', 'training', 'federation', 'export', 'checkpoint'] as const;
export type TrainerJob = (typeof trainerJobs)[number];

export const trainerStatusSchema = z.object({
  state: z.enum(connectionStates),
  /** The job the trainer runs now; null between jobs. Back to null before the job's answer is sent. */
  job: z.nullable(z.enum(trainerJobs)),
  /**
   * The weights the trainer holds: the base model, a run's or a federation's (the replica of the last
   * round synced while it goes on). A local run's are those it started from until it ends (its step so
   * far is `step`). Null while no model is loaded: a new trainer process holds none until it has one.
   */
  weights: z.nullable(weightsStateSchema),
  mode: z.enum(['none', 'local', 'federation']),
  server: z.nullable(z.string()),
  round: nonNegInt(),
  rounds: nonNegInt(),
  /** Cumulative local step (local runs: of `steps`). */
  step: nonNegInt(),
  /** Local runs: steps of the run; federations: τ, the steps of a round. */
  steps: nonNegInt(),
  /** Federations: the step within the round in progress (of `steps`). */
  roundStep: z.optional(nonNegInt()),
  /** Federations: the last round committed and synced (`round` is the one in progress). */
  committedRound: z.optional(nonNegInt()),
  loss: finiteOrNull(),
  heldOutLoss: finiteOrNull(),
  bytes: byteCountersSchema,
  provider: z.nullable(z.string()),
  detail: z.nullable(z.string()),
});
export type TrainerStatus = z.infer<typeof trainerStatusSchema>;

/** A batch of step losses (sent at most a few times a second, not once per step). */
export const stepsNotificationSchema = z.object({
  points: z.array(z.object({ step: nonNegInt(), round: nonNegInt(), loss: z.number() })),
});
export type StepsNotification = z.infer<typeof stepsNotificationSchema>;

export const roundCompletedSchema = z.object({
  round: positiveInt(),
  rounds: nonNegInt(),
  /** Cumulative step index at the end of the round (x axis shared with the step losses). */
  step: nonNegInt(),
  heldOutLoss: finiteOrNull(),
  bytesUp: nonNegInt(),
  bytesDown: nonNegInt(),
  fedAvgBytes: nonNegInt(),
});
export type RoundCompleted = z.infer<typeof roundCompletedSchema>;

export const seedProbabilitiesSchema = z.object({
  round: nonNegInt(),
  k: positiveInt(),
  /** K little-endian float32 values, base64: 4096 seeds fit in 22 KB of JSON. */
  float32Base64: z.string(),
});
export type SeedProbabilities = z.infer<typeof seedProbabilitiesSchema>;

/** A held-out evaluation during a run (x axis: the cumulative step). */
export const evaluationSchema = z.object({
  step: nonNegInt(),
  round: nonNegInt(),
  heldOutLoss: z.number(),
});
export type Evaluation = z.infer<typeof evaluationSchema>;

const share = () => z.nullable(z.number().check(z.gte(0), z.lte(1)));

/**
 * Held-out measures a person can read, beside the loss: before training and with each evaluation of a
 * local run, at the start and after each round a federation commits (x axis: the cumulative step).
 */
export const heldOutMetricsSchema = z.object({
  step: nonNegInt(),
  round: nonNegInt(),
  /** Next-token top-1 accuracy (0–1); null when the model has no graph to score every position with. */
  accuracy: share(),
  /** Code: share of next lines completed exactly; null for instruction data (see rougeL). */
  exactMatch: share(),
  /** Instruction data: mean Rouge-L F of the generated answers; null for code. */
  rougeL: share(),
});
export type HeldOutMetricsNotification = z.infer<typeof heldOutMetricsSchema>;

export const logNotificationSchema = z.object({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error']),
  message: z.string(),
});
export type LogNotification = z.infer<typeof logNotificationSchema>;

/** Error codes of failed requests (JSON-RPC application range). */
export const TrainerErrorCodes = {
  invalidParams: -32602,
  notInitialized: -32002,
  busy: -32003,
  failed: -32004,
  /** The federation could not be reached; `data` is a ConnectionFailure. */
  connectionFailed: -32005,
  cancelled: -32800,
} as const;

export type { ParseResult };

export function parsePayload<T>(schema: z.ZodMiniType<T>, input: unknown): ParseResult<T> {
  return parseWith(schema, input);
}

export const idleTrainerStatus: TrainerStatus = {
  state: 'idle',
  job: null,
  weights: null,
  mode: 'none',
  server: null,
  round: 0,
  rounds: 0,
  step: 0,
  steps: 0,
  loss: null,
  heldOutLoss: null,
  bytes: { upRound: 0, downRound: 0, upTotal: 0, downTotal: 0, fedAvgRound: 0, fedAvgTotal: 0 },
  provider: null,
  detail: null,
};
