// `npm run test:ui`: drives the real workbench (code-server + chromium) like a user: the settings in the
// User tab, a local run started and stopped with the keyboard alone (focus kept through live updates),
// the dashboard of a local run and of a federation, past runs compared, a window reload that resumes a
// run, and both webviews rendering under their CSP. Screenshots go to test-results/screenshots/. Prints `N passed, N failed` last.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { ConsoleMessage, Frame, Page } from 'playwright-core';
import * as assert from 'node:assert/strict';
import { exitWith } from '../../scripts/harness/exit';
import { ensureHarnessTools } from '../../scripts/harness/install';
import { harnessLog } from '../../scripts/harness/log';
import { repoRoot, screenshotsDir } from '../../scripts/harness/paths';
import { withWorkbench } from '../../scripts/harness/workbench';
import { runUiTests, type UiTest } from './uiRunner';
import { activityBarItem, findFrameWith, runFromCommandPalette, tabTo, waitForNotification, waitForWorkbench } from './workbenchPage';

const timeoutMs = Number(process.env.FEDKSEED_UI_TIMEOUT_MS ?? 300_000);
/** FEDKSEED_UI_GREP=<pattern>: run only the tests whose name matches (each such test starts from a loaded workbench). */
const grep = process.env.FEDKSEED_UI_GREP;
/** A file of the workspace to type code into. */
const COMPLETION_FILE = 'orders.ts';
const COMPLETION_CODE = 'export interface Order {\n  id: string;\n  total: number;\n}\n\nexport function loadOrders(items: Order[], limit = 10): Order[] {\n';
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

/**
 * A free loopback port below the ephemeral range, for the local federation: VS Code's port detection
 * offers to forward a new listening port there (not an ephemeral one, such as port 0 gives), so the test
 * that no offer appears means something only on such a port.
 */
async function freePortBelowEphemeral(): Promise<number> {
  const listens = (port: number) =>
    new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
  for (let port = 7071; port < 7300; port++) if (await listens(port)) return port;
  throw new Error('no free port in 7071–7299 for the local federation');
}

/** Workspace settings of the UI run: a short local run and a small, quick local federation on a free loopback port. */
const workspaceSettings: Record<string, unknown> = {
  'fedkseed.data.path': join(repoRoot, 'trainer', 'data'),
  'fedkseed.training.batchSize': 1,
  'fedkseed.training.sequenceLength': 32,
  'fedkseed.training.k': 4096,
  'fedkseed.training.steps': 1500,
  'fedkseed.training.evalEvery': 50,
  // The weights of the run's last step, so a run stopped after a few steps leaves fine-tuned weights to
  // suggest from whether or not its held-out loss moved ('best' is tested in the extension-host suite).
  'fedkseed.training.keep': 'last',
  'fedkseed.engine.threads': 1,
  'fedkseed.localServer.port': 0,
  'fedkseed.localServer.rounds': 4,
  'fedkseed.localServer.tau': 8,
  'fedkseed.localServer.sampling': 'pro',
};

/** The workspace folder of the run (its .vscode/settings.json holds workspaceSettings). */
let workspaceDir = '';
const writeWorkspaceSettings = (extra: Record<string, unknown> = {}) =>
  writeFileSync(join(workspaceDir, '.vscode', 'settings.json'), JSON.stringify({ ...workspaceSettings, ...extra }, null, 2));

const text = async (frame: Frame, testId: string) => ((await frame.locator(`[data-testid="${testId}"]`).first().textContent()) ?? '').trim();
const phaseIs = (frame: Frame, pattern: string, timeout = 30_000) =>
  frame.waitForFunction((p) => new RegExp(p).test(document.querySelector('[data-testid="phase"]')?.textContent ?? ''), pattern, { timeout });

/** Marks the focused element of a webview, to tell later whether focus stayed on that very element. */
const markFocused = (frame: Frame) =>
  frame.evaluate(() => {
    const active = document.activeElement as (Element & { fkMark?: number }) | null;
    if (!active || active === document.body) return false;
    active.fkMark = 1;
    return true;
  });
const focusStillMarked = (frame: Frame) => frame.evaluate(() => (document.activeElement as (Element & { fkMark?: number }) | null)?.fkMark === 1);

const tests: UiTest[] = [
  {
    name: 'the workbench loads with the FedKSeed activity-bar entry',
    async run(page) {
      await waitForWorkbench(page);
      await activityBarItem(page, 'FedKSeed').waitFor({ state: 'visible', timeout: 30_000 });
    },
  },
  {
    name: 'the settings show in the User tab of this remote window, server URL and model first',
    async run(page) {
      await runFromCommandPalette(page, 'Preferences: Open User Settings');
      const editor = page.locator('.settings-editor');
      await editor.waitFor({ state: 'visible', timeout: 20_000 });
      await page.keyboard.type('@ext:fedkseed.fedkseed');
      const titles = editor.locator('.setting-item-contents .setting-item-title');
      // The filter applies after a moment: wait until the list shows our settings only.
      await page.waitForFunction(
        () => {
          const all = [...document.querySelectorAll('.settings-editor .setting-item-contents .setting-item-title')];
          return all.length > 5 && all.every((t) => /Fedkseed/i.test(t.textContent ?? ''));
        },
        undefined,
        { timeout: 20_000 },
      );
      const all = (await titles.allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
      assert.match(all[0] ?? '', /Server: Url/, `first setting: ${all[0]}`);
      assert.match(all[1] ?? '', /Model: Path/, `second setting: ${all[1]}`);
      for (const title of ['Model: Tokenizer Path', 'Data: Path'])
        assert.ok(
          all.some((t) => t.includes(title)),
          `${title} is missing from the User tab: ${all.join(' | ')}`,
        );
      await shot(page, 'settings-user-tab');
      await runFromCommandPalette(page, 'View: Close All Editors');
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
    name: 'the empty sidebar names the model and data Start will use, with Select Model… and Select Dataset… reachable from the keyboard',
    async run(page) {
      await runFromCommandPalette(page, 'FedKSeed: Focus on Training View');
      // The view's first load in this window takes a while.
      const sidebar = await findFrameWith(page, '[data-testid="setup"]:not([hidden])', 60_000);
      assert.equal(await text(sidebar, 'setup-model'), 'tiny-code-lm (bundled)');
      assert.equal(await text(sidebar, 'setup-data'), `${join(repoRoot, 'trainer', 'data')}/`);
      assert.match(await text(sidebar, 'setup-data-detail'), /text and code files · set in Workspace settings/);
      assert.ok(await sidebar.locator('[data-testid="welcome"]').isVisible(), 'the welcome of an empty sidebar');
      for (const id of ['select-model', 'select-dataset']) assert.ok(await sidebar.locator(`[data-testid="${id}"]`).isVisible(), `${id} is shown`);
      await shot(page, 'sidebar-welcome');
      // Select Dataset… from the keyboard opens the file picker; Escape leaves everything as it was.
      await tabTo(page, sidebar, 'select-dataset');
      await page.keyboard.press('Enter');
      const input = page.locator('.quick-input-widget input');
      await input.waitFor({ state: 'visible', timeout: 10_000 });
      await page.keyboard.press('Escape');
      await input.waitFor({ state: 'hidden', timeout: 10_000 });
      assert.equal(await text(sidebar, 'setup-data'), `${join(repoRoot, 'trainer', 'data')}/`);
    },
  },
  {
    name: 'Open Setting on an error opens the Settings editor in the tab where the value is set (Workspace)',
    async run(page) {
      const missing = join(workspaceDir, 'no-such-model', 'model.onnx');
      writeWorkspaceSettings({ 'fedkseed.model.path': missing });
      try {
        await runFromCommandPalette(page, 'FedKSeed: Focus on Training View');
        const sidebar = await findFrameWith(page, '[data-testid="setup"]', 60_000);
        await sidebar.waitForFunction(() => document.querySelector('[data-testid="setup-model"]')?.textContent === 'no-such-model', undefined, {
          timeout: 20_000,
        });
        await runFromCommandPalette(page, 'FedKSeed: Evaluate Model');
        await waitForNotification(page, /model file not found.*Workspace settings/);
        await page
          .locator('.notification-list-item', { hasText: 'model file not found' })
          .first()
          .locator('.monaco-button', { hasText: 'Open Setting' })
          .first()
          .click();
        const editor = page.locator('.settings-editor');
        await editor.waitFor({ state: 'visible', timeout: 20_000 });
        await page.waitForFunction(
          () => /Workspace/.test(document.querySelector('.settings-editor .settings-tabs-widget .action-label.checked')?.textContent ?? ''),
          undefined,
          { timeout: 10_000 },
        );
        // Searched for the setting: the list starts with it.
        await page.waitForFunction(
          () => /Model: Path/.test(document.querySelector('.settings-editor .setting-item-contents .setting-item-title')?.textContent ?? ''),
          undefined,
          { timeout: 10_000 },
        );
        await shot(page, 'open-setting-workspace-tab');
      } finally {
        writeWorkspaceSettings();
        // The workbench logs the error this test asked for; it is not a webview's problem.
        for (let i = webviewProblems.length - 1; i >= 0; i--) if (webviewProblems[i]!.includes(missing)) webviewProblems.splice(i, 1);
        await runFromCommandPalette(page, 'Notifications: Clear All Notifications').catch(() => undefined);
        await runFromCommandPalette(page, 'View: Close All Editors');
      }
    },
  },
  {
    name: 'keyboard only: the sidebar starts local training, focus survives status updates, only the status line is live',
    async run(page) {
      await runFromCommandPalette(page, 'FedKSeed: Focus on Training View');
      const sidebar = await findFrameWith(page, '[data-testid="training-status"]');
      assert.equal(await text(sidebar, 'phase'), 'Idle');
      await shot(page, 'sidebar-idle');
      const live = await sidebar.evaluate(() => [...document.querySelectorAll('[aria-live]')].map((e) => e.getAttribute('data-testid')));
      assert.deepEqual(live, ['status-line'], `live regions: ${live.join(', ')}`);
      await tabTo(page, sidebar, 'start-training');
      await page.keyboard.press('Enter');
      await phaseIs(sidebar, 'Training');
      // Focus moved to the Stop button that replaced Start, and stays on that very element while the view updates.
      await sidebar.waitForFunction(
        () => {
          let a: Element | null = document.activeElement;
          while (a && !a.getAttribute('data-testid') && a.parentElement) a = a.parentElement;
          return a?.getAttribute('data-testid') === 'stop-training';
        },
        undefined,
        { timeout: 10_000 },
      );
      assert.ok(await markFocused(sidebar));
      await sidebar.waitForFunction(
        () => /^\d+\/1,500 · ~.* left$/.test(document.querySelector('[data-testid="progress"]')?.textContent?.trim() ?? ''),
        undefined,
        { timeout: 30_000 },
      );
      const first = await text(sidebar, 'progress');
      await sidebar.waitForFunction((f) => (document.querySelector('[data-testid="progress"]')?.textContent?.trim() ?? f) !== f, first, { timeout: 30_000 });
      assert.ok(await focusStillMarked(sidebar), 'the focused button was re-rendered by a status update');
      await shot(page, 'sidebar-local-training');
    },
  },
  {
    name: 'in a light theme the Training pill reads at 4.5:1 or more',
    async run(page) {
      const sidebar = await findFrameWith(page, '[data-testid="training-status"]');
      await phaseIs(sidebar, 'Training');
      writeWorkspaceSettings({ 'workbench.colorTheme': 'Default Light Modern' });
      try {
        await sidebar.waitForFunction(() => document.body.classList.contains('vscode-light'), undefined, { timeout: 20_000 });
        // A string, so the bundler's helpers stay out of the page.
        const ratio = (await sidebar.evaluate(`(() => {
          const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
          const pill = document.querySelector('[data-testid="phase"]');
          let bg = [255, 255, 255];
          for (let el = pill; el; el = el.parentElement) {
            const b = rgb(getComputedStyle(el).backgroundColor);
            if (b.length === 3 || (b.length === 4 && b[3] > 0)) { bg = b; break; }
          }
          const lum = (c) => {
            const [r, g, b] = c.slice(0, 3).map((v) => { const s = v / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; });
            return 0.2126 * r + 0.7152 * g + 0.0722 * b;
          };
          const [a, b] = [lum(rgb(getComputedStyle(pill).color)), lum(bg)].sort((x, y) => y - x);
          return (a + 0.05) / (b + 0.05);
        })()`)) as number;
        await shot(page, 'sidebar-training-light');
        assert.ok(ratio >= 4.5, `the Training pill's contrast is ${ratio.toFixed(2)}:1`);
      } finally {
        writeWorkspaceSettings();
        await sidebar.waitForFunction(() => !document.body.classList.contains('vscode-light'), undefined, { timeout: 20_000 });
      }
    },
  },
  {
    name: 'the dashboard of a local run: loss with its smoothing, a held-out baseline and curve, a run card, no empty cards',
    async run(page) {
      await runFromCommandPalette(page, 'FedKSeed: Show Dashboard');
      const frame = await findFrameWith(page, '[data-testid="charts"]:not([hidden])', 30_000);
      await frame.waitForFunction(
        () => Number(document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-held-out-points') ?? 0) >= 2,
        undefined,
        { timeout: 30_000 },
      );
      const visibleCards = await frame.evaluate(() =>
        [...document.querySelectorAll('[data-testid$="-card"]')].filter((c) => !(c as HTMLElement).hidden).map((c) => c.getAttribute('data-testid')),
      );
      assert.deepEqual(visibleCards.filter((c) => c !== 'measures-card').sort(), ['loss-card', 'run-card'], `visible cards: ${visibleCards.join(', ')}`);
      const datasets = await frame.locator('[data-testid="loss-chart"]').getAttribute('data-datasets');
      for (const label of ['step loss', 'smoothed', 'held-out', 'base model'])
        assert.ok(datasets?.includes(label), `the loss chart lacks "${label}": ${datasets}`);
      // Beside the loss, measures anyone can read: the held-out top-1 accuracy at each evaluation.
      await frame.waitForFunction(
        () => Number(document.querySelector('[data-testid="measures-chart"]')?.getAttribute('data-accuracy-points') ?? 0) >= 2,
        undefined,
        { timeout: 30_000 },
      );
      assert.ok((await frame.locator('[data-testid="loss-chart"]').getAttribute('data-datasets'))?.includes('held-out top-1 accuracy'));
      assert.match(await text(frame, 'measures-subtitle'), /top-1 accuracy \d+\.\d% → \d+\.\d%/);
      assert.match(await text(frame, 'run-summary'), /Local training/);
      await shot(page, 'dashboard-local');
    },
  },
  {
    name: 'keyboard only: Stop shows Stopping… at once, then Stopped',
    async run(page) {
      await runFromCommandPalette(page, 'FedKSeed: Focus on Training View');
      const sidebar = await findFrameWith(page, '[data-testid="training-status"]');
      const stopping = /Training/.test(await text(sidebar, 'phase'));
      if (stopping) {
        await tabTo(page, sidebar, 'stop-training');
        await page.keyboard.press('Enter');
        await phaseIs(sidebar, 'Stopping…|Stopped|Finished', 5_000);
      }
      await phaseIs(sidebar, 'Stopped|Finished');
      // The Stop button is gone: the keyboard user goes on from Start Training, not from the top of the page.
      if (stopping)
        await sidebar.waitForFunction(() => (document.activeElement as HTMLElement | null)?.getAttribute('data-testid') === 'start-training', undefined, {
          timeout: 5_000,
        });
      await shot(page, 'sidebar-stopped-local');
    },
  },
  {
    name: 'a local federation started from the command palette advances the sidebar round counter',
    async run(page) {
      await runFromCommandPalette(page, 'FedKSeed: Focus on Training View');
      const sidebar = await findFrameWith(page, '[data-testid="training-status"]', 60_000);
      await runFromCommandPalette(page, 'FedKSeed: Start Local Federation');
      await sidebar.waitForFunction(() => /Round [2-4] of 4/.test(document.querySelector('[data-testid="progress"]')?.textContent ?? ''), undefined, {
        timeout: 60_000,
      });
      assert.match(await text(sidebar, 'progress'), /Round [2-4] of 4 · step \d+\/8/);
      assert.match(await text(sidebar, 'bytes-total'), /less than FedAvg/);
      assert.match(await text(sidebar, 'local-server'), /127\.0\.0\.1/);
      assert.notEqual(await text(sidebar, 'provider'), '—');
      // A figure and its unit ("494 B") stay on one line in a narrow sidebar.
      await sidebar.waitForFunction(() => /\d B|KB/.test(document.querySelector('[data-testid="bytes-round"]')?.textContent ?? ''), undefined, {
        timeout: 30_000,
      });
      const lines = await sidebar.evaluate(() => {
        document.body.style.width = '110px';
        const range = document.createRange();
        range.selectNodeContents(document.querySelector('[data-testid="bytes-round"]')!);
        const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        document.body.style.width = '';
        return tops.size;
      });
      assert.equal(lines, 1, "the last round's bytes wrapped in a narrow sidebar");
      // The local server's port is the extension's own: VS Code's port detection does not offer to forward it.
      // (The federation has run for seconds: detection polls every few, so an offer would be listed by now.)
      const offered = await waitForNotification(page, /port \d+|forwarded port/i, 8_000).catch(() => null);
      assert.equal(offered, null, `a notification offers to forward the local federation server's port: ${offered}`);
      await page.keyboard.press('Escape');
      await shot(page, 'sidebar-federation');
    },
  },
  {
    name: "the dashboard draws real data in all three charts, with the sidebar's figures",
    async run(page) {
      await runFromCommandPalette(page, 'FedKSeed: Show Dashboard');
      const frame = await findFrameWith(page, '[data-testid="seeds-card"]:not([hidden])', 30_000);
      for (const chart of ['seeds', 'loss', 'bytes']) {
        await frame.waitForFunction((id) => Number(document.querySelector(`[data-testid="${id}-chart"]`)?.getAttribute('data-points') ?? 0) > 0, chart, {
          timeout: 30_000,
        });
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
      assert.match(await text(frame, 'seeds-subtitle'), /K = 4,096/);
      assert.match(await text(frame, 'bytes-subtitle'), /less than FedAvg/);
      await shot(page, 'dashboard-live');
    },
  },
  {
    name: 'Stop Training from the command palette stops the run; the sidebar and the server agree on the rounds done',
    async run(page) {
      const sidebar = await findFrameWith(page, '[data-testid="training-status"]');
      if (!/Finished/.test(await text(sidebar, 'phase'))) {
        await runFromCommandPalette(page, 'FedKSeed: Stop Training');
        await phaseIs(sidebar, 'Stopped|Finished', 20_000);
      }
      const done = /(\d+) of 4 rounds done/.exec(await text(sidebar, 'progress'))?.[1];
      assert.ok(done, `progress: ${await text(sidebar, 'progress')}`);
      assert.match(await text(sidebar, 'local-server'), new RegExp(`${done} of 4 rounds done`));
      await runFromCommandPalette(page, 'FedKSeed: Stop Local Federation Server');
      await sidebar.locator('[data-testid="local-server"]').waitFor({ state: 'detached', timeout: 10_000 });
      await shot(page, 'stopped');
    },
  },
  {
    name: 'keyboard only: past runs are listed in the sidebar and compared in the dashboard',
    async run(page) {
      await runFromCommandPalette(page, 'FedKSeed: Focus on Training View');
      const sidebar = await findFrameWith(page, '[data-testid="run-list"]');
      const items = await sidebar.locator('[data-testid="run-item"]').count();
      assert.ok(items >= 2, `${items} runs listed`);
      assert.match(await sidebar.locator('[data-testid="run-item"]').nth(1).innerText(), /Local training/);
      await tabTo(page, sidebar, 'run-compare', 60);
      await page.keyboard.press('Enter');
      const frame = await findFrameWith(page, '[data-testid="compare-banner"]:not([hidden])', 20_000);
      await frame.waitForFunction(() => Number(document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-compare-points') ?? 0) > 0, undefined, {
        timeout: 20_000,
      });
      await shot(page, 'dashboard-compare');
      await runFromCommandPalette(page, 'View: Close All Editors');
    },
  },
  {
    name: 'a window reload resumes the run from its checkpoint, restores the dashboard and says what happened',
    async run(page) {
      await runFromCommandPalette(page, 'FedKSeed: Start Training');
      const sidebar = await findFrameWith(page, '[data-testid="training-status"]');
      await sidebar.waitForFunction(
        () => Number(/^(\d+)\//.exec(document.querySelector('[data-testid="progress"]')?.textContent?.trim() ?? '')?.[1] ?? 0) >= 15,
        undefined,
        { timeout: 60_000 },
      );
      await runFromCommandPalette(page, 'FedKSeed: Show Dashboard');
      await findFrameWith(page, '[data-testid="charts"]:not([hidden])', 20_000);
      await runFromCommandPalette(page, 'Developer: Reload Window');
      await waitForWorkbench(page);
      const message = await waitForNotification(page, /resumed .*checkpoint/i, 60_000);
      assert.match(message, /step \d+/);
      const dashboard = await findFrameWith(page, '[data-testid="charts"]:not([hidden])', 30_000);
      assert.ok(Number(await dashboard.locator('[data-testid="loss-chart"]').getAttribute('data-points')) > 0, "the restored dashboard has the run's history");
      await runFromCommandPalette(page, 'FedKSeed: Focus on Training View');
      const restored = await findFrameWith(page, '[data-testid="training-status"]');
      await phaseIs(restored, 'Training|Finished', 60_000);
      await shot(page, 'after-reload');
      await runFromCommandPalette(page, 'FedKSeed: Stop Training').catch(() => undefined);
      await phaseIs(restored, 'Stopped|Finished', 30_000);
    },
  },
  {
    name: 'after a short local run, typing in a file shows ghost text from the fine-tuned model, the hover names it, and Tab accepts it',
    async run(page) {
      await waitForWorkbench(page);
      await activityBarItem(page, 'FedKSeed').waitFor({ state: 'visible', timeout: 30_000 });
      await runFromCommandPalette(page, 'FedKSeed: Focus on Training View');
      const sidebar = await findFrameWith(page, '[data-testid="training-status"]');
      await phaseIs(sidebar, 'Idle|Stopped|Finished', 30_000);
      // A few seconds of local fine-tuning, stopped after 10 steps (of this run: the sidebar shows the last one's until it starts).
      await runFromCommandPalette(page, 'FedKSeed: Start Training');
      await phaseIs(sidebar, 'Training', 30_000);
      await sidebar.waitForFunction(
        () => Number(/^(\d+)\//.exec(document.querySelector('[data-testid="progress"]')?.textContent?.trim() ?? '')?.[1] ?? 0) >= 10,
        undefined,
        { timeout: 60_000 },
      );
      await runFromCommandPalette(page, 'FedKSeed: Stop Training');
      await phaseIs(sidebar, 'Stopped|Finished', 30_000);
      await runFromCommandPalette(page, 'FedKSeed: Turn On Completions from the Fine-Tuned Model');

      await page.keyboard.press('Control+P');
      await page.locator('.quick-input-widget input').fill(COMPLETION_FILE);
      await page.locator('.quick-input-widget .monaco-list-row', { hasText: COMPLETION_FILE }).first().waitFor({ timeout: 10_000 });
      await page.keyboard.press('Enter');
      const editor = page.locator('.editor-instance .monaco-editor').first();
      await editor.waitFor({ state: 'visible', timeout: 10_000 });
      await editor.locator('.view-lines').click();
      await page.keyboard.press('Control+End');
      // Typed as a user would; the pause after the last keystroke asks for a suggestion.
      await page.keyboard.type('  const count = ', { delay: 30 });
      const ghost = editor.locator('.ghost-text-decoration, .ghost-text').first();
      await ghost.waitFor({ state: 'visible', timeout: 30_000 });
      // The ghost text takes no hover: the status bar names where the suggestion comes from.
      const named = page
        .locator('[id="fedkseed.fedkseed.fedkseed.suggestion"], .statusbar-item', { hasText: /FedKSeed · tiny-code-lm · run \d+ step \d+/ })
        .first();
      await named.waitFor({ state: 'visible', timeout: 10_000 });
      await shot(page, 'completion-ghost-text');
      const column = async () => Number(/Col (\d+)/.exec(await page.locator('[id="status.editor.selection"]').innerText())?.[1] ?? 0);
      const before = await column();
      await page.keyboard.press('Tab');
      await page.waitForFunction(
        (c) => Number(/Col (\d+)/.exec(document.querySelector('[id="status.editor.selection"]')?.textContent ?? '')?.[1] ?? 0) > c,
        before,
        { timeout: 10_000 },
      );
      assert.equal(await ghost.isVisible(), false, 'the ghost text was accepted into the line');
      // The suggestion did not repeat the space typed after "=".
      const accepted = (await editor.locator('.view-line').filter({ hasText: 'const count =' }).first().innerText()).replace(/\u00a0/g, ' ');
      assert.doesNotMatch(accepted, /const count = {2}/, `one space after "=": ${JSON.stringify(accepted)}`);

      // The hover on the suggestion's line names the model and the step its weights were trained to. Asked
      // for from the keyboard at the line's first word (Show or Focus Hover): a mouse hover depends on where
      // the pointer lands (past a line's end, or on the next ghost text, the editor shows none).
      await page.keyboard.press('Escape');
      await page.keyboard.press('Home');
      await runFromCommandPalette(page, 'Show or Focus Hover');
      const hover = page.locator('.monaco-hover', { hasText: 'FedKSeed suggestion' }).first();
      await hover.waitFor({ state: 'visible', timeout: 15_000 });
      assert.match(await hover.innerText(), /FedKSeed suggestion · tiny-code-lm · run \d+ step \d+ \(fine-tuned after step \d+\)/);
      await shot(page, 'completion-hover');
      await runFromCommandPalette(page, 'FedKSeed: Turn Off Completions from the Fine-Tuned Model');
      await runFromCommandPalette(page, 'View: Close All Editors');
    },
  },
  {
    name: "dashboard charts: a finished local federation draws its last round's accuracy, every y axis holds its points under its top tick, the seed chart peaks at the stated max",
    async run(page) {
      await waitForWorkbench(page);
      await activityBarItem(page, 'FedKSeed').waitFor({ state: 'visible', timeout: 30_000 });
      await runFromCommandPalette(page, 'FedKSeed: Focus on Training View');
      const sidebar = await findFrameWith(page, '[data-testid="training-status"]', 60_000);
      await phaseIs(sidebar, 'Idle|Stopped|Finished', 30_000);
      await runFromCommandPalette(page, 'FedKSeed: Start Local Federation');
      await sidebar.waitForFunction(() => /4 of 4 rounds done/.test(document.querySelector('[data-testid="progress"]')?.textContent ?? ''), undefined, {
        timeout: 180_000,
      });
      await phaseIs(sidebar, 'Finished', 60_000);
      await runFromCommandPalette(page, 'FedKSeed: Show Dashboard');
      const frame = await findFrameWith(page, '[data-testid="seeds-card"]:not([hidden])', 30_000);
      const attr = async (chart: string, name: string) => (await frame.locator(`[data-testid="${chart}-chart"]`).getAttribute(`data-${name}`)) ?? '';
      // The last round's held-out loss is at step 4·τ; its accuracy point is there too.
      await frame.waitForFunction(() => document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-last-x') === '32', undefined, {
        timeout: 30_000,
      });
      await frame.waitForFunction(
        () => Number(document.querySelector('[data-testid="measures-chart"]')?.getAttribute('data-accuracy-points') ?? 0) > 0,
        undefined,
        { timeout: 30_000 },
      );
      assert.equal(await attr('measures', 'last-x'), await attr('loss', 'last-x'), "the last round's accuracy point is drawn");
      assert.equal(await attr('measures', 'accuracy-points'), '5', 'top-1 accuracy for the base model and each of the 4 rounds');
      await shot(page, 'dashboard-federation-finished');
      for (const chart of ['seeds', 'loss', 'measures', 'bytes']) {
        const highest = Number(await attr(chart, 'highest'));
        const topTick = Number(await attr(chart, 'top-tick'));
        assert.ok(
          Number.isFinite(highest) && Number.isFinite(topTick) && (await attr(chart, 'top-tick')) !== '',
          `${chart}: highest ${highest}, top tick ${topTick}`,
        );
        assert.ok(topTick >= highest, `${chart}: a point at ${highest} is above the top tick ${topTick}`);
      }
      // The subtitle's maximum, relative to uniform, is the chart's peak.
      const stated = Number(/max \S+ \((\d+\.\d+)× uniform\)/.exec(await text(frame, 'seeds-subtitle'))?.[1]);
      assert.ok(Number.isFinite(stated), await text(frame, 'seeds-subtitle'));
      assert.ok(
        Math.abs(Number(await attr('seeds', 'highest')) - stated) <= 0.006,
        `the seed chart peaks at ${await attr('seeds', 'highest')}, the subtitle says ${stated}`,
      );
      await runFromCommandPalette(page, 'FedKSeed: Stop Local Federation Server');
    },
  },
  {
    name: "a local run's dashboard fills the page with its charts, and compared with a federation shows both runs' figures side by side",
    async run(page) {
      await waitForWorkbench(page);
      await activityBarItem(page, 'FedKSeed').waitFor({ state: 'visible', timeout: 30_000 });
      await runFromCommandPalette(page, 'FedKSeed: Focus on Training View');
      const sidebar = await findFrameWith(page, '[data-testid="training-status"]', 60_000);
      await phaseIs(sidebar, 'Idle|Stopped|Finished', 30_000);
      if (!(await sidebar.locator('[data-testid="run-item"]', { hasText: 'Local federation' }).count())) {
        // Run alone: a short federation to compare with.
        await runFromCommandPalette(page, 'FedKSeed: Start Local Federation');
        await sidebar.waitForFunction(() => /4 of 4 rounds done/.test(document.querySelector('[data-testid="progress"]')?.textContent ?? ''), undefined, {
          timeout: 180_000,
        });
        await phaseIs(sidebar, 'Finished', 60_000);
        await runFromCommandPalette(page, 'FedKSeed: Stop Local Federation Server');
      }
      writeWorkspaceSettings({ 'fedkseed.training.steps': 12, 'fedkseed.training.evalEvery': 4 });
      try {
        // The workbench reads a changed settings file after a moment; Start reads the settings then.
        await page.waitForTimeout(3_000);
        await runFromCommandPalette(page, 'FedKSeed: Start Training');
        // Finished with all 12 steps (an earlier run's "Finished" shows until this one starts).
        await sidebar.waitForFunction(() => /^12\/12$/.test(document.querySelector('[data-testid="progress"]')?.textContent?.trim() ?? ''), undefined, {
          timeout: 120_000,
        });
        await phaseIs(sidebar, 'Finished', 30_000);
      } finally {
        writeWorkspaceSettings();
      }
      await runFromCommandPalette(page, 'FedKSeed: Show Dashboard');
      const frame = await findFrameWith(page, '[data-testid="charts"][data-layout="local"]:not([hidden])', 30_000);
      await frame.waitForFunction(
        () => Number(document.querySelector('[data-testid="measures-chart"]')?.getAttribute('data-accuracy-points') ?? 0) >= 2,
        undefined,
        { timeout: 30_000 },
      );
      const layout = await frame.evaluate(() => {
        const cards = [...document.querySelectorAll('[data-testid$="-card"]')].filter(
          (c) => !(c as HTMLElement).hidden && (c as HTMLElement).offsetParent !== null,
        );
        return {
          cards: cards.map((c) => c.getAttribute('data-testid')),
          bottom: Math.max(...cards.map((c) => c.getBoundingClientRect().bottom)),
          height: window.innerHeight,
        };
      });
      assert.deepEqual(layout.cards.sort(), ['loss-card', 'measures-card', 'run-card'], `visible cards: ${layout.cards.join(', ')}`);
      assert.ok(layout.bottom >= 0.8 * layout.height, `the cards end at ${Math.round(layout.bottom)} px of a ${layout.height} px page`);
      assert.match(await text(frame, 'local-note'), /federation/);
      await shot(page, 'dashboard-local-filled');

      await runFromCommandPalette(page, 'FedKSeed: Focus on Training View');
      const list = await findFrameWith(page, '[data-testid="run-list"]');
      await list.locator('[data-testid="run-item"]', { hasText: 'Local federation' }).first().locator('[data-testid="run-compare"]').click();
      const dashboard = await findFrameWith(page, '[data-testid="compare-table"]:not([hidden])', 30_000);
      const cell = async (figure: string, side: 'shown' | 'compared') =>
        ((await dashboard.locator(`[data-testid="compare-row"][data-figure="${figure}"] [data-testid="compare-${side}"]`).textContent()) ?? '').trim();
      assert.match(await cell('Held-out loss', 'shown'), /^\d+\.\d{4} → best \d+\.\d{4}, last \d+\.\d{4}$/);
      assert.match(await cell('Held-out loss', 'compared'), /^\d+\.\d{4} → best \d+\.\d{4}, last \d+\.\d{4}$/);
      assert.equal(await cell('Steps / rounds', 'shown'), '12 of 12 steps');
      assert.match(await cell('Steps / rounds', 'compared'), /^\d of 4 rounds \(τ = 8\)$/);
      assert.match(await cell('Bytes', 'compared'), /less than FedAvg/);
      assert.match(await cell('Top-1 accuracy', 'shown'), /%/);
      assert.match(await text(dashboard, 'compare-compared-title'), /^Compared: Local federation/);
      // One chart per measure, the compared run's curves on the same axes, labelled and dashed.
      await dashboard.waitForFunction(
        () => Number(document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-compare-points') ?? 0) > 0,
        undefined,
        { timeout: 20_000 },
      );
      const datasets = (await dashboard.locator('[data-testid="loss-chart"]').getAttribute('data-datasets')) ?? '';
      for (const label of ['shown: held-out loss', 'compared: held-out loss', 'shown: held-out top-1 accuracy', 'compared: held-out top-1 accuracy'])
        assert.ok(datasets.includes(label), `no "${label}" in ${datasets}`);
      for (const chart of ['loss', 'measures']) {
        const [highest, top] = await dashboard
          .locator(`[data-testid="${chart}-chart"]`)
          .evaluate((c) => [Number(c.getAttribute('data-highest')), Number(c.getAttribute('data-top-tick'))]);
        assert.ok(top! >= highest!, `${chart}: a point at ${highest} is above the top tick ${top}`);
      }
      await shot(page, 'dashboard-compare-figures');
      await dashboard.locator('[data-testid="stop-comparing"]').click();
      await dashboard.locator('[data-testid="compare-card"]').waitFor({ state: 'hidden', timeout: 10_000 });
      await runFromCommandPalette(page, 'View: Close All Editors');
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
        workspaceDir = server.workspace;
        workspaceSettings['fedkseed.localServer.port'] = await freePortBelowEphemeral();
        page.on('console', recordProblem);
        mkdirSync(join(server.workspace, '.vscode'), { recursive: true });
        writeFileSync(join(server.workspace, '.vscode', 'settings.json'), JSON.stringify(workspaceSettings, null, 2));
        writeFileSync(join(server.workspace, COMPLETION_FILE), COMPLETION_CODE);
      },
    },
    async (session) => {
      const summary = await runUiTests(session.page, grep ? tests.filter((t) => new RegExp(grep).test(t.name)) : tests, screenshotsDir);
      if (summary.failed > 0) session.markFailed();
      harnessLog(`UI test took ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${screenshotsDir}`);
      console.log(`${summary.passed} passed, ${summary.failed} failed`);
      return summary.failed > 0 ? 1 : 0;
    },
  );
}

exitWith(main);
