// Identifiers shared with package.json's `contributes`; the extension-host suite checks they agree.
export const VIEW_CONTAINER_ID = 'fedkseed';
export const TRAINING_VIEW_ID = 'fedkseed.training';
export const DASHBOARD_VIEW_TYPE = 'fedkseed.dashboard';

export const CommandIds = {
  showDashboard: 'fedkseed.showDashboard',
} as const;
export type CommandId = (typeof CommandIds)[keyof typeof CommandIds];
