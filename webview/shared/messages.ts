// The typed message contract between the extension host and its webviews. Each direction has one
// union type; both ends validate what they receive against these schemas before acting on it,
// because a webview message is just structured-cloned data from another process.
import * as z from 'zod/mini';

/** Where the federation run stands, as the webviews display it. */
export const trainingPhases = ['idle', 'connecting', 'training', 'stopped', 'error'] as const;
export const trainingStatusSchema = z.object({
  phase: z.enum(trainingPhases),
  /** Last completed federation round; 0 before the first. */
  round: z.number().check(z.int(), z.nonnegative()),
  /** One human-readable line (e.g. the server address or the error). */
  detail: z.optional(z.string()),
});
export type TrainingStatus = z.infer<typeof trainingStatusSchema>;

export const idleStatus: TrainingStatus = { phase: 'idle', round: 0 };

/** Commands a webview may ask the host to run; anything else is refused. */
export const webviewCommandIds = ['fedkseed.showDashboard'] as const;

export const webviewToHostSchema = z.discriminatedUnion('type', [
  /** The webview's script ran and it is listening: the host sends the current state. */
  z.object({ type: z.literal('ready') }),
  z.object({ type: z.literal('runCommand'), command: z.enum(webviewCommandIds) }),
]);
export type WebviewToHost = z.infer<typeof webviewToHostSchema>;

export const hostToWebviewSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('status'), status: trainingStatusSchema }),
]);
export type HostToWebview = z.infer<typeof hostToWebviewSchema>;

/** What a webview persists with setState, and what a restored dashboard panel is revived from. */
export const webviewStateSchema = z.object({
  status: trainingStatusSchema,
});
export type WebviewState = z.infer<typeof webviewStateSchema>;

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

function parseWith<T>(schema: z.ZodMiniType<T>, input: unknown): ParseResult<T> {
  const result = schema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, error: result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
}

export const parseWebviewToHost = (input: unknown): ParseResult<WebviewToHost> => parseWith(webviewToHostSchema, input);
export const parseHostToWebview = (input: unknown): ParseResult<HostToWebview> => parseWith(hostToWebviewSchema, input);
export const parseWebviewState = (input: unknown): ParseResult<WebviewState> => parseWith(webviewStateSchema, input);
