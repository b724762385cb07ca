// Each notification the trainer sends, with the schema of its payload: the extension checks every one
// where it enters its process (extension/processes/trainerProcess.ts), so nothing it shows or stores was
// taken on trust.
import type { NotificationType } from 'vscode-jsonrpc';
import type * as z from 'zod/mini';
import { parseWith, type ParseResult } from './parse';
import {
  evaluationSchema,
  heldOutMetricsSchema,
  logNotificationSchema,
  roundCompletedSchema,
  seedProbabilitiesSchema,
  stepsNotificationSchema,
  trainerStatusSchema,
} from './trainer-payloads';
import { Notifications } from './trainer-rpc';

type NotificationName = keyof typeof Notifications;
type Payload<N extends NotificationName> = (typeof Notifications)[N] extends NotificationType<infer P> ? P : never;

/** The payload schema of each notification, by name; the compiler holds each to its notification's type. */
const schemas: { readonly [N in NotificationName]: z.ZodMiniType<Payload<N>> } = {
  status: trainerStatusSchema,
  steps: stepsNotificationSchema,
  roundCompleted: roundCompletedSchema,
  evaluation: evaluationSchema,
  metrics: heldOutMetricsSchema,
  seedProbabilities: seedProbabilitiesSchema,
  log: logNotificationSchema,
};

const byMethod = new Map<string, z.ZodMiniType<unknown>>(Object.entries(schemas).map(([name, schema]) => [Notifications[name as NotificationName].method, schema]));

/** The verdict on a notification's payload, or null when `method` is not a trainer notification. */
export function checkTrainerNotification(method: string, params: unknown): ParseResult<unknown> | null {
  const schema = byMethod.get(method);
  return schema ? parseWith(schema, params) : null;
}
