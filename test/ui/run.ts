// `npm run test:ui`: drives the real workbench (code-server + chromium) like a user: the command
// palette opens the dashboard, the activity bar opens the Training view, and both webviews render
// under their CSP. Screenshots go to test-results/screenshots/. Prints `N passed, N failed` last.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ConsoleMessage, Page } from 'playwright-core';
import * as assert from 'node:assert/strict';
import { harnessLog } from '../../scripts/harness/log';
import { repoRoot, screenshotsDir } from '../../scripts/harness/paths';
import { withWorkbench } from '../../scripts/harness/workbench';
import { runUiTests, type UiTest } from './uiRunner';
import { activityBarItem, editorTabLabels, findFrameWith, runFromCommandPalette, waitForWorkbench } from './workbenchPage';

const timeoutMs = Number(process.env.FEDKSEED_UI_TIMEOUT_MS ?? 300_000);
const shot = (page: Page, name: string) => page.screenshot({ path: join(screenshotsDir, `${name}.png`) });

/** Console problems raised by our webviews (CSP refusals, script errors). */
const webviewProblems: string[] = [];
function recordProblem(message: ConsoleMessage): void {
  const text = message.text();
  if (/Content Security Policy|Refused to|FedKSeed/i.test(text) && (message.type() === 'error' || message.type() === 'warning')) {
    const where = message.location();
    webviewProblems.push(`${message.type()} at ${where.url}:${where.lineNumber}: ${text}`);
  }
}

const tests: UiTest[] = [
  {
    name: 'the workbench loads with the FedKSeed activity-bar entry',
    async run(page) {
      await waitForWorkbench(page);
      await activityBarItem(page, 'FedKSeed').waitFor({ state: 'visible', timeout: 30_000 });
    },
  },
  {
    name: 'the command palette runs "FedKSeed: Show Dashboard" and the dashboard renders its empty state',
    async run(page) {
      await runFromCommandPalette(page, 'FedKSeed: Show Dashboard');
      const frame = await findFrameWith(page, '[data-testid="empty-state"]');
      assert.equal((await frame.locator('[data-testid="empty-state"] h2').innerText()).trim(), 'No training yet');
      assert.equal((await frame.locator('h1').innerText()).trim(), 'FedKSeed Dashboard');
      assert.equal((await frame.locator('[data-testid="phase"]').textContent())?.trim(), 'Idle');
      // The toolkit's custom elements upgraded (they render through a shadow root).
      assert.equal(await frame.locator('vscode-divider').evaluate((el) => el.shadowRoot !== null), true);
      assert.deepEqual(await editorTabLabels(page), ['FedKSeed Dashboard']);
      await shot(page, 'dashboard');
    },
  },
  {
    name: 'the FedKSeed sidebar shows the Training view with its status',
    async run(page) {
      await runFromCommandPalette(page, 'View: Close All Editors');
      await activityBarItem(page, 'FedKSeed').click();
      // A container with one view shows the view's name in the sidebar title, not in a pane header.
      await page.locator('.part.sidebar .title-label', { hasText: /FedKSeed/i }).first().waitFor({ timeout: 10_000 });
      const frame = await findFrameWith(page, '[data-testid="training-status"]');
      assert.equal((await frame.locator('[data-testid="phase"]').textContent())?.trim(), 'Idle');
      assert.match(await frame.locator('[data-testid="training-status"]').innerText(), /No rounds completed/);
      await frame.locator('[data-testid="open-dashboard"]').waitFor({ state: 'visible' });
      await shot(page, 'sidebar');
    },
  },
  {
    name: 'the sidebar "Open Dashboard" button opens the dashboard',
    async run(page) {
      const sidebar = await findFrameWith(page, '[data-testid="open-dashboard"]');
      await sidebar.locator('[data-testid="open-dashboard"]').click();
      await findFrameWith(page, '[data-testid="empty-state"]');
      assert.deepEqual(await editorTabLabels(page), ['FedKSeed Dashboard']);
      await shot(page, 'sidebar-and-dashboard');
    },
  },
  {
    name: 'the webviews raised no CSP violations or errors',
    async run() {
      assert.deepEqual(webviewProblems, []);
    },
  },
];

async function main(): Promise<number> {
  const started = Date.now();
  for (const bundle of ['extension.js', 'webview/dashboard.js', 'webview/sidebar.js']) {
    if (!existsSync(join(repoRoot, 'dist', bundle))) throw new Error(`dist/${bundle} is missing: run "npm run build" first`);
  }
  return withWorkbench(
    {
      label: 'ui',
      beforeLoad: async (page) => {
        page.on('console', recordProblem);
      },
    },
    async (session) => {
      const summary = await runUiTests(session.page, tests, screenshotsDir);
      if (summary.failed > 0) session.markFailed();
      harnessLog(`UI test took ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${screenshotsDir}`);
      console.log(`${summary.passed} passed, ${summary.failed} failed`);
      return summary.failed > 0 ? 1 : 0;
    },
  );
}

const watchdog = setTimeout(() => {
  process.stderr.write(`the UI test did not finish within ${timeoutMs / 1000} s\n`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}, timeoutMs);
watchdog.unref();

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  },
);
