// Identifiers shared with package.json's `contributes`; the extension-host suite checks they agree.
export const TRAINING_VIEW_ID = 'fedkseed.training';
export const DASHBOARD_VIEW_TYPE = 'fedkseed.dashboard';

export const CommandIds = {
  showDashboard: 'fedkseed.showDashboard',
  startTraining: 'fedkseed.startTraining',
  stopTraining: 'fedkseed.stopTraining',
  connectFederation: 'fedkseed.connectFederation',
  disconnectFederation: 'fedkseed.disconnectFederation',
  startLocalFederation: 'fedkseed.startLocalFederation',
  startLocalServer: 'fedkseed.startLocalServer',
  stopLocalServer: 'fedkseed.stopLocalServer',
  selectModel: 'fedkseed.selectModel',
  selectDataset: 'fedkseed.selectDataset',
  setFederationToken: 'fedkseed.setFederationToken',
  evaluateModel: 'fedkseed.evaluateModel',
  exportModel: 'fedkseed.exportModel',
  showLogs: 'fedkseed.showLogs',
  openRun: 'fedkseed.openRun',
  compareRuns: 'fedkseed.compareRuns',
  removeRun: 'fedkseed.removeRun',
  loadRunWeights: 'fedkseed.loadRunWeights',
  resumeRun: 'fedkseed.resumeRun',
  enableCompletions: 'fedkseed.enableCompletions',
  disableCompletions: 'fedkseed.disableCompletions',
  compareCompletions: 'fedkseed.compareCompletions',
} as const;
export type CommandId = (typeof CommandIds)[keyof typeof CommandIds];

/** Context keys that enable commands: a run going on, a federation joined, the local server up. */
export const ContextKeys = {
  training: 'fedkseed.training',
  connected: 'fedkseed.connected',
  serverRunning: 'fedkseed.serverRunning',
} as const;
