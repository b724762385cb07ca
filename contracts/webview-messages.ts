// The typed message contract between the extension host and its webviews. Each direction has one
// union type; both ends validate what they receive against these schemas before acting on it,
// because a webview message is just structured-cloned data from another process.
import * as z from 'zod/mini';
import { parseWith, type ParseResult } from './parse';
import { runFiguresSchema, computeFigures } from './run-figures';
import { emptyHistory, runHistorySchema, runSummarySchema } from './runs';
import { idleTrainerStatus, trainerStatusSchema, weightsStateSchema } from './trainer-payloads';

export { emptyHistory, runHistorySchema, roundBytesSchema, type RoundBytes, type RunHistory, type RunSummary } from './runs';

/** The local federation server: rounds committed (done), the round it runs, its clients. */
export const localServerStatusSchema = z.object({
  url: z.string(),
  committed: z.number(),
  inProgress: z.nullable(z.number()),
  rounds: z.number(),
  clients: z.number(),
});
export type LocalServerStatus = z.infer<typeof localServerStatusSchema>;

/** Everything the sidebar, the dashboard header and the status bar show of the run in progress. */
export const viewStatusSchema = z.object({
  trainer: trainerStatusSchema,
  localServer: z.nullable(localServerStatusSchema),
  /** The model the trainer has loaded (file name), once loaded. */
  model: z.nullable(z.string()),
  /** What the trainer's weights are (base, or fine-tuned by which run), once loaded. */
  weights: z.nullable(weightsStateSchema),
  /** "fine-tuned after round 4 (Local federation)". */
  weightsText: z.nullable(z.string()),
  /** What Export and Evaluate act on when it is not the weights held: the run shown in the dashboard (its checkpoint). */
  actsOnText: z.optional(z.nullable(z.string())),
  /** The figures of the live run (or the last one): the one computation every view shows. */
  figures: runFiguresSchema,
});
export type ViewStatus = z.infer<typeof viewStatusSchema>;

export const idleViewStatus: ViewStatus = {
  trainer: idleTrainerStatus,
  localServer: null,
  model: null,
  weights: null,
  weightsText: null,
  figures: computeFigures(null, emptyHistory),
};

/** What Start will use, in words: the model and the data the settings name now, and where each is set. */
export const setupViewSchema = z.object({
  model: z.object({
    /** "tiny-code-lm (bundled)", "Qwen2.5-0.5B-Instruct", "org/name". */
    name: z.string(),
    /** Where it is and where the setting comes from: "/models/qwen/onnx/model.onnx · set in Workspace settings". */
    detail: z.string(),
  }),
  /** Null when there is no dataset: no folder open and none selected. */
  data: z.nullable(
    z.object({
      /** "my-project (the workspace folder)", "dolly.jsonl". */
      name: z.string(),
      /** "its text and code files · the default", "a JSONL/JSON dataset · set in User settings". */
      detail: z.string(),
    }),
  ),
});
export type SetupView = z.infer<typeof setupViewSchema>;

/** What the dashboard shows: one run (the live one unless another was opened) and the run it is compared with. */
export const dashboardViewSchema = z.object({
  run: z.nullable(runSummarySchema),
  history: runHistorySchema,
  figures: runFiguresSchema,
  /** The run shown is the one in progress (or the latest). */
  live: z.boolean(),
  compare: z.nullable(z.object({ run: runSummarySchema, history: runHistorySchema })),
});
export type DashboardView = z.infer<typeof dashboardViewSchema>;
export const emptyDashboardView: DashboardView = { run: null, history: emptyHistory, figures: idleViewStatus.figures, live: true, compare: null };

/** The run list of the sidebar. */
export const runListSchema = z.object({
  runs: z.array(z.object({ summary: runSummarySchema, figures: z.string() })),
  shownRunId: z.nullable(z.string()),
  compareRunId: z.nullable(z.string()),
  liveRunId: z.nullable(z.string()),
});
export type RunList = z.infer<typeof runListSchema>;
export const emptyRunList: RunList = { runs: [], shownRunId: null, compareRunId: null, liveRunId: null };

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
  'fedkseed.exportModel',
  'fedkseed.showLogs',
  'fedkseed.selectModel',
  'fedkseed.selectDataset',
  'fedkseed.loadRunWeights',
] as const;
export type WebviewCommandId = (typeof webviewCommandIds)[number];

/** What a webview may do with a run of the list: show it, compare it with the one shown, remove it, go back to the live run, stop comparing. */
export const runActions = ['open', 'compare', 'remove', 'showLive', 'stopComparing', 'loadWeights'] as const;
export type RunAction = (typeof runActions)[number];

export const webviewToHostSchema = z.discriminatedUnion('type', [
  /** The webview's script ran and it is listening: the host sends the current state. */
  z.object({ type: z.literal('ready') }),
  z.object({ type: z.literal('runCommand'), command: z.enum(webviewCommandIds) }),
  z.object({ type: z.literal('runAction'), action: z.enum(runActions), runId: z.optional(z.string()) }),
]);
export type WebviewToHost = z.infer<typeof webviewToHostSchema>;

export const hostToWebviewSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('status'), status: viewStatusSchema }),
  z.object({ type: z.literal('dashboard'), view: dashboardViewSchema }),
  z.object({ type: z.literal('runs'), list: runListSchema }),
  z.object({ type: z.literal('setup'), setup: setupViewSchema }),
]);
export type HostToWebview = z.infer<typeof hostToWebviewSchema>;

/** What a webview persists with setState, and what a restored dashboard panel is revived from. */
export const webviewStateSchema = z.object({
  status: viewStatusSchema,
  dashboard: z.optional(dashboardViewSchema),
  runs: z.optional(runListSchema),
  setup: z.optional(setupViewSchema),
});
export type WebviewState = z.infer<typeof webviewStateSchema>;

export const parseWebviewToHost = (input: unknown): ParseResult<WebviewToHost> => parseWith(webviewToHostSchema, input);
export const parseHostToWebview = (input: unknown): ParseResult<HostToWebview> => parseWith(hostToWebviewSchema, input);
export const parseWebviewState = (input: unknown): ParseResult<WebviewState> => parseWith(webviewStateSchema, input);
