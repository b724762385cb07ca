// The JSON-RPC contract between the extension and the trainer child process (stdio, vscode-jsonrpc).
// Both ends import this one module: the request and notification types carry the payload types
// (defined with their zod schemas in trainer-payloads.ts), and every payload is validated where it enters a
// process.
import { NotificationType, RequestType } from 'vscode-jsonrpc';
import type {
  CompleteParams,
  CompleteResult,
  Empty,
  EvaluateParams,
  EvaluateResult,
  Evaluation,
  HeldOutMetricsNotification,
  ExportModelParams,
  ExportModelResult,
  FederationResult,
  InitializeParams,
  InitializeResult,
  JoinFederationParams,
  LoadCheckpointParams,
  LogNotification,
  ResetWeightsParams,
  RoundCompleted,
  SeedProbabilities,
  StartTrainingParams,
  StepsNotification,
  StopResult,
  TrainerStatus,
  TrainingResult,
  WeightsResult,
} from './trainer-payloads';

export * from './trainer-payloads';

// ---- the method table ----------------------------------------------------------------------------

export const Requests = {
  initialize: new RequestType<InitializeParams, InitializeResult, void>('fedkseed/initialize'),
  evaluate: new RequestType<EvaluateParams, EvaluateResult, void>('fedkseed/evaluate'),
  startTraining: new RequestType<StartTrainingParams, TrainingResult, void>('fedkseed/startTraining'),
  joinFederation: new RequestType<JoinFederationParams, FederationResult, void>('fedkseed/joinFederation'),
  stop: new RequestType<Empty, StopResult, void>('fedkseed/stop'),
  exportModel: new RequestType<ExportModelParams, ExportModelResult, void>('fedkseed/exportModel'),
  loadCheckpoint: new RequestType<LoadCheckpointParams, WeightsResult, void>('fedkseed/loadCheckpoint'),
  resetWeights: new RequestType<ResetWeightsParams, WeightsResult, void>('fedkseed/resetWeights'),
  complete: new RequestType<CompleteParams, CompleteResult, void>('fedkseed/complete'),
} as const;

export const Notifications = {
  status: new NotificationType<TrainerStatus>('fedkseed/status'),
  steps: new NotificationType<StepsNotification>('fedkseed/steps'),
  roundCompleted: new NotificationType<RoundCompleted>('fedkseed/roundCompleted'),
  evaluation: new NotificationType<Evaluation>('fedkseed/evaluation'),
  metrics: new NotificationType<HeldOutMetricsNotification>('fedkseed/metrics'),
  seedProbabilities: new NotificationType<SeedProbabilities>('fedkseed/seedProbabilities'),
  log: new NotificationType<LogNotification>('fedkseed/log'),
} as const;

export function encodeFloat32Base64(values: ArrayLike<number>): string {
  const array = Float32Array.from(values);
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength).toString('base64');
}

