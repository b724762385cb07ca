// Each notification the trainer sends is checked against its payload's schema (TrainerNotifications in
// trainer-rpc.ts) where it enters the extension's process (extension/processes/trainerProcess.ts), so
// nothing it shows or stores was taken on trust.
import type * as z from 'zod/mini';
import { parseWith, type ParseResult } from './parse';
import { TrainerNotifications } from './trainer-rpc';

const byMethod = new Map<string, z.ZodMiniType<unknown>>(
  Object.values(TrainerNotifications).map((spec) => [spec.type.method, spec.payload as z.ZodMiniType<unknown>]),
);

/** The verdict on a notification's payload, or null when `method` is not a trainer notification. */
export function checkTrainerNotification(method: string, params: unknown): ParseResult<unknown> | null {
  const schema = byMethod.get(method);
  return schema ? parseWith(schema, params) : null;
}
