// The typed message contract between the extension host and its webviews. Each direction has one
// union type; both ends validate what they receive against these schemas before acting on it,
// because a webview message is just structured-cloned data from another process.
import * as z from 'zod/mini';
import { parseWith, type ParseResult } from './parse';
import { idleTrainerStatus, seedProbabilitiesSchema, trainerStatusSchema } from './trainer-payloads';

export const localServerStatusSchema = z.object({
  url: z.string(),
  round: z.number(),
  rounds: z.number(),
  clients: z.number(),
});
export type LocalServerStatus = z.infer<typeof localServerStatusSchema>;

/** Everything the sidebar and the dashboard header show. */
export const viewStatusSchema = z.object({
  trainer: trainerStatusSchema,
  localServer: z.nullable(localServerStatusSchema),
  /** The model the trainer has loaded (file name), once loaded. */
  model: z.nullable(z.string()),
});
export type ViewStatus = z.infer<typeof viewStatusSchema>;

export const idleViewStatus: ViewStatus = { trainer: idleTrainerStatus, localServer: null, model: null };

const point = z.tuple([z.number(), z.number()]);
export const roundBytesSchema = z.object({ round: z.number(), up: z.number(), down: z.number(), fedAvg: z.number() });
export type RoundBytes = z.infer<typeof roundBytesSchema>;

/** The run's series for the dashboard charts (x: cumulative local step). */
export const runHistorySchema = z.object({
  stepLoss: z.array(point),
  heldOut: z.array(point),
  rounds: z.array(roundBytesSchema),
  seeds: z.nullable(seedProbabilitiesSchema),
});
export type RunHistory = z.infer<typeof runHistorySchema>;
export const emptyHistory: RunHistory = { stepLoss: [], heldOut: [], rounds: [], seeds: null };

/** Commands a webview may ask the host to run; anything else is refused. */
export const webviewCommandIds = [
  'fedkseed.showDashboard',
  'fedkseed.startTraining',
  'fedkseed.stopTraining',
  'fedkseed.connectFederation',
  'fedkseed.disconnectFederation',
  'fedkseed.startLocalFederation',
  'fedkseed.startLocalServer',
  'fedkseed.stopLocalServer',
  'fedkseed.evaluateModel',
  'fedkseed.showLogs',
] as const;
export type WebviewCommandId = (typeof webviewCommandIds)[number];

export const webviewToHostSchema = z.discriminatedUnion('type', [
  /** The webview's script ran and it is listening: the host sends the current state. */
  z.object({ type: z.literal('ready') }),
  z.object({ type: z.literal('runCommand'), command: z.enum(webviewCommandIds) }),
]);
export type WebviewToHost = z.infer<typeof webviewToHostSchema>;

export const hostToWebviewSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('status'), status: viewStatusSchema }),
  z.object({ type: z.literal('history'), history: runHistorySchema }),
]);
export type HostToWebview = z.infer<typeof hostToWebviewSchema>;

/** What a webview persists with setState, and what a restored dashboard panel is revived from. */
export const webviewStateSchema = z.object({
  status: viewStatusSchema,
  history: z.optional(runHistorySchema),
});
export type WebviewState = z.infer<typeof webviewStateSchema>;

export const parseWebviewToHost = (input: unknown): ParseResult<WebviewToHost> => parseWith(webviewToHostSchema, input);
export const parseHostToWebview = (input: unknown): ParseResult<HostToWebview> => parseWith(hostToWebviewSchema, input);
export const parseWebviewState = (input: unknown): ParseResult<WebviewState> => parseWith(webviewStateSchema, input);
