// The dashboard panel and the sidebar view open, load their bundles under the CSP and complete
// the typed ready handshake with the extension.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { dashboardTabs, nextWebviewReady, ourExtension, waitFor } from './helpers';

describe('webviews', () => {
  afterEach(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('fedkseed.showDashboard opens the dashboard webview panel, which reports ready', async () => {
    const api = await ourExtension().activate();
    const ready = nextWebviewReady(api, 'dashboard');
    await vscode.commands.executeCommand('fedkseed.showDashboard');
    const tabs = await waitFor('a dashboard webview tab', () => (dashboardTabs().length > 0 ? dashboardTabs() : undefined));
    assert.equal(tabs.length, 1);
    assert.equal(tabs[0]!.label, 'FedKSeed Dashboard');
    await ready;
  });

  it('showing the dashboard twice keeps a single panel, and it can be reopened after closing', async () => {
    await ourExtension().activate();
    await vscode.commands.executeCommand('fedkseed.showDashboard');
    await vscode.commands.executeCommand('fedkseed.showDashboard');
    await waitFor('a dashboard webview tab', () => (dashboardTabs().length > 0 ? true : undefined));
    assert.equal(dashboardTabs().length, 1);

    await vscode.window.tabGroups.close(dashboardTabs());
    await waitFor('the dashboard tab to close', () => (dashboardTabs().length === 0 ? true : undefined));
    await vscode.commands.executeCommand('fedkseed.showDashboard');
    await waitFor('the reopened dashboard tab', () => (dashboardTabs().length === 1 ? true : undefined));
  });

  it('the Training sidebar view resolves and reports ready', async () => {
    const api = await ourExtension().activate();
    const ready = nextWebviewReady(api, 'sidebar');
    await vscode.commands.executeCommand('fedkseed.training.focus');
    await ready;
  });
});
