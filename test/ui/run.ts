// `npm run test:ui`: drives the real workbench (code-server + chromium) like a user: the command
// palette starts a local federation, the sidebar follows its rounds, the dashboard draws live charts, and
// both webviews render under their CSP. Screenshots go to test-results/screenshots/. Prints `N passed, N failed` last.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConsoleMessage, Page } from 'playwright-core';
import * as assert from 'node:assert/strict';
import { exitWith } from '../../scripts/harness/exit';
import { ensureHarnessTools } from '../../scripts/harness/install';
import { harnessLog } from '../../scripts/harness/log';
import { repoRoot, screenshotsDir } from '../../scripts/harness/paths';
import { withWorkbench } from '../../scripts/harness/workbench';
import { runUiTests, type UiTest } from './uiRunner';
import { activityBarItem, findFrameWith, runFromCommandPalette, waitForWorkbench } from './workbenchPage';

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

/** Workspace settings of the UI run: a small, quick local federation on a free loopback port. */
const workspaceSettings = {
  'fedkseed.data.path': join(repoRoot, 'trainer', 'data'),
  'fedkseed.training.batchSize': 1,
  'fedkseed.training.sequenceLength': 32,
  'fedkseed.training.k': 4096,
  'fedkseed.engine.threads': 1,
  'fedkseed.localServer.port': 0,
  'fedkseed.localServer.rounds': 4,
  'fedkseed.localServer.tau': 8,
  'fedkseed.localServer.sampling': 'pro',
};

const tests: UiTest[] = [
  {
    name: 'the workbench loads with the FedKSeed activity-bar entry',
    async run(page) {
      await waitForWorkbench(page);
      await activityBarItem(page, 'FedKSeed').waitFor({ state: 'visible', timeout: 30_000 });
    },
  },
  {
    name: 'the dashboard shows its empty state before any run',
    async run(page) {
      await runFromCommandPalette(page, 'FedKSeed: Show Dashboard');
      const frame = await findFrameWith(page, '[data-testid="empty-state"]');
      assert.equal((await frame.locator('[data-testid="empty-state"] h2').innerText()).trim(), 'No training yet');
      assert.equal((await frame.locator('[data-testid="phase"]').textContent())?.trim(), 'Idle');
      assert.equal(await frame.locator('vscode-divider').evaluate((el) => el.shadowRoot !== null), true);
      await shot(page, 'dashboard-empty');
      await runFromCommandPalette(page, 'View: Close All Editors');
    },
  },
  {
    name: 'a local federation started from the command palette advances the sidebar round counter',
    async run(page) {
      await activityBarItem(page, 'FedKSeed').click();
      const sidebar = await findFrameWith(page, '[data-testid="training-status"]');
      assert.equal((await sidebar.locator('[data-testid="phase"]').textContent())?.trim(), 'Idle');
      await shot(page, 'sidebar-idle');
      await runFromCommandPalette(page, 'FedKSeed: Start Local Federation');
      const progress = sidebar.locator('[data-testid="progress"]');
      await sidebar.waitForFunction(() => /Round [2-9] of 4/.test(document.querySelector('[data-testid="progress"]')?.textContent ?? ''), undefined, { timeout: 60_000 });
      assert.match(await progress.innerText(), /Round [2-9] of 4/);
      assert.match(await sidebar.locator('[data-testid="bytes-total"]').innerText(), /↑ \d/);
      assert.match(await sidebar.locator('[data-testid="local-server"]').innerText(), /127\.0\.0\.1/);
      assert.notEqual((await sidebar.locator('[data-testid="provider"]').innerText()).trim(), '—');
      await shot(page, 'sidebar-federation');
    },
  },
  {
    name: 'the dashboard draws real data in all three charts',
    async run(page) {
      await runFromCommandPalette(page, 'FedKSeed: Show Dashboard');
      const frame = await findFrameWith(page, '[data-testid="charts"]:not([hidden])', 30_000);
      for (const chart of ['seeds', 'loss', 'bytes']) {
        await frame.waitForFunction((id) => Number(document.querySelector(`[data-testid="${id}-chart"]`)?.getAttribute('data-points') ?? 0) > 0, chart, { timeout: 30_000 });
        // The canvas really has pixels drawn (not just data).
        const painted = await frame.locator(`[data-testid="${chart}-chart"]`).evaluate((canvas: HTMLCanvasElement) => {
          const ctx = canvas.getContext('2d');
          if (!ctx || canvas.width === 0 || canvas.height === 0) return 0;
          const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
          let n = 0;
          for (let i = 3; i < pixels.length; i += 4) if (pixels[i]! > 0) n++;
          return n;
        });
        assert.ok(painted > 500, `${chart} chart has only ${painted} painted pixels`);
      }
      assert.match(await frame.locator('[data-testid="seeds-subtitle"]').innerText(), /K = 4,096/);
      assert.match(await frame.locator('[data-testid="bytes-subtitle"]').innerText(), /vs FedAvg/);
      await shot(page, 'dashboard-live');
    },
  },
  {
    name: 'Stop Training from the command palette stops the run',
    async run(page) {
      const sidebar = await findFrameWith(page, '[data-testid="training-status"]');
      const phase = (await sidebar.locator('[data-testid="phase"]').textContent())?.trim();
      if (phase !== 'Finished') {
        await runFromCommandPalette(page, 'FedKSeed: Stop Training');
        await sidebar.waitForFunction(() => /Stopped|Finished/.test(document.querySelector('[data-testid="phase"]')?.textContent ?? ''), undefined, { timeout: 20_000 });
      }
      await runFromCommandPalette(page, 'FedKSeed: Stop Local Federation Server');
      await sidebar.locator('[data-testid="local-server"]').waitFor({ state: 'detached', timeout: 10_000 });
      await shot(page, 'stopped');
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
  // A first run installs the tools (minutes); the time limit starts after that.
  await ensureHarnessTools();
  const watchdog = setTimeout(() => {
    process.stderr.write(`the UI test did not finish within ${timeoutMs / 1000} s\n`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }, timeoutMs);
  watchdog.unref();
  return withWorkbench(
    {
      label: 'ui',
      beforeLoad: async (page, server) => {
        page.on('console', recordProblem);
        mkdirSync(join(server.workspace, '.vscode'), { recursive: true });
        writeFileSync(join(server.workspace, '.vscode', 'settings.json'), JSON.stringify(workspaceSettings, null, 2));
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

exitWith(main);
