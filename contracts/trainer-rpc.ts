// The JSON-RPC contract between the extension and the trainer child process (stdio, vscode-jsonrpc).
// One table binds each method's name to the zod schemas of its params and result: the extension's
// client (TrainerClient, below) and the trainer's `serve` (trainer/host/serve.ts) both take it, so a
// method cannot be sent or answered without both schemas, and both ends check what crosses the pipe.
import { NotificationType, RequestType, ResponseError, type CancellationToken, type MessageConnection } from 'vscode-jsonrpc';
import type * as z from 'zod/mini';
import { parseWith } from './parse';
import {
  completeParamsSchema,
  completeResultSchema,
  emptySchema,
  evaluateParamsSchema,
  evaluateResultSchema,
  evaluationSchema,
  exportModelParamsSchema,
  exportModelResultSchema,
  federationResultSchema,
  heldOutMetricsSchema,
  initializeParamsSchema,
  initializeResultSchema,
  joinFederationParamsSchema,
  loadCheckpointParamsSchema,
  logNotificationSchema,
  resetWeightsParamsSchema,
  roundCompletedSchema,
  seedProbabilitiesSchema,
  startTrainingParamsSchema,
  stepsNotificationSchema,
  stopResultSchema,
  TrainerErrorCodes,
  trainerStatusSchema,
  trainingResultSchema,
  weightsResultSchema,
} from './trainer-payloads';

export * from './trainer-payloads';

// ---- the method table ----------------------------------------------------------------------------

/** A request: its wire name and the schemas of what goes out and what comes back. */
export interface MethodSpec<P, R> {
  readonly type: RequestType<P, R, void>;
  readonly params: z.ZodMiniType<P>;
  readonly result: z.ZodMiniType<R>;
}

function method<P, R>(name: string, params: z.ZodMiniType<P>, result: z.ZodMiniType<R>): MethodSpec<P, R> {
  return { type: new RequestType<P, R, void>(name), params, result };
}

export type ParamsOf<S> = S extends MethodSpec<infer P, infer _R> ? P : never;
export type ResultOf<S> = S extends MethodSpec<infer _P, infer R> ? R : never;
/** A table of methods by name (each spec keeps its own params and result types). */
export type MethodTable<T> = { readonly [M in keyof T]: MethodSpec<ParamsOf<T[M]>, ResultOf<T[M]>> };

export const TrainerMethods = {
  initialize: method('fedkseed/initialize', initializeParamsSchema, initializeResultSchema),
  evaluate: method('fedkseed/evaluate', evaluateParamsSchema, evaluateResultSchema),
  startTraining: method('fedkseed/startTraining', startTrainingParamsSchema, trainingResultSchema),
  joinFederation: method('fedkseed/joinFederation', joinFederationParamsSchema, federationResultSchema),
  stop: method('fedkseed/stop', emptySchema, stopResultSchema),
  exportModel: method('fedkseed/exportModel', exportModelParamsSchema, exportModelResultSchema),
  loadCheckpoint: method('fedkseed/loadCheckpoint', loadCheckpointParamsSchema, weightsResultSchema),
  resetWeights: method('fedkseed/resetWeights', resetWeightsParamsSchema, weightsResultSchema),
  complete: method('fedkseed/complete', completeParamsSchema, completeResultSchema),
} as const;
export type TrainerMethodName = keyof typeof TrainerMethods;

/** The request types alone, for code that speaks to a trainer over a raw connection (tests, benchmarks). */
export const Requests = Object.fromEntries(Object.entries(TrainerMethods).map(([name, spec]) => [name, spec.type])) as {
  readonly [M in TrainerMethodName]: (typeof TrainerMethods)[M]['type'];
};

// ---- notifications, trainer → extension ----------------------------------------------------------

/** A notification: its wire name and the schema of its payload. */
export interface NotificationSpec<P> {
  readonly type: NotificationType<P>;
  readonly payload: z.ZodMiniType<P>;
}

function notification<P>(name: string, payload: z.ZodMiniType<P>): NotificationSpec<P> {
  return { type: new NotificationType<P>(name), payload };
}

export const TrainerNotifications = {
  status: notification('fedkseed/status', trainerStatusSchema),
  steps: notification('fedkseed/steps', stepsNotificationSchema),
  roundCompleted: notification('fedkseed/roundCompleted', roundCompletedSchema),
  evaluation: notification('fedkseed/evaluation', evaluationSchema),
  metrics: notification('fedkseed/metrics', heldOutMetricsSchema),
  seedProbabilities: notification('fedkseed/seedProbabilities', seedProbabilitiesSchema),
  log: notification('fedkseed/log', logNotificationSchema),
} as const;

export const Notifications = Object.fromEntries(Object.entries(TrainerNotifications).map(([name, spec]) => [name, spec.type])) as {
  readonly [N in keyof typeof TrainerNotifications]: (typeof TrainerNotifications)[N]['type'];
};

// ---- the client ----------------------------------------------------------------------------------

/** What a request's params must be: the message the trainer answers the same fault with. */
export function invalidParams(name: string, error: string): ResponseError<void> {
  return new ResponseError(TrainerErrorCodes.invalidParams, `invalid ${name} parameters: ${error}`);
}

/**
 * Requests by name over a connection, checked both ways against the table: params before they are sent
 * (refused as the trainer would refuse them, as an `invalidParams` error), results as they arrive.
 */
export class RpcClient<T extends MethodTable<T>> {
  constructor(
    private readonly connection: MessageConnection,
    private readonly table: T,
  ) {}

  async request<M extends keyof T & string>(name: M, params: ParamsOf<T[M]>, token?: CancellationToken): Promise<ResultOf<T[M]>> {
    const spec: MethodSpec<ParamsOf<T[M]>, ResultOf<T[M]>> = this.table[name];
    const checked = parseWith(spec.params, params);
    if (!checked.ok) throw invalidParams(name, checked.error);
    const result = parseWith(spec.result, await this.connection.sendRequest(spec.type, checked.value, token));
    if (!result.ok) throw new Error(`the trainer sent an invalid ${name} result: ${result.error}`);
    return result.value;
  }
}

export type TrainerClient = RpcClient<typeof TrainerMethods>;

export function trainerClient(connection: MessageConnection): TrainerClient {
  return new RpcClient(connection, TrainerMethods);
}
