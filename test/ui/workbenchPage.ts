// How the UI test drives the VS Code workbench in chromium: the command palette, the activity bar,
// and the webviews (each an iframe inside an iframe, found by scanning every frame of the page).
import type { Frame, Page } from 'playwright-core';

export async function waitForWorkbench(page: Page, timeoutMs = 60_000): Promise<void> {
  await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: timeoutMs });
}

/** Runs a command by its palette title, e.g. "FedKSeed: Show Dashboard". */
export async function runFromCommandPalette(page: Page, title: string): Promise<void> {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill(`>${title}`);
  // Enter only once the palette lists the command, or it would run whatever matched first.
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first().waitFor({ timeout: 10_000 });
  await page.keyboard.press('Enter');
  await input.waitFor({ state: 'hidden', timeout: 10_000 });
}

/** The activity-bar entry of a view container, by its title. */
export function activityBarItem(page: Page, title: string) {
  return page.locator(`.activitybar .action-item a[aria-label^="${title}"]`).first();
}

/** Polls every frame of the page until one contains `selector`; webview frames come and go. */
export async function findFrameWith(page: Page, selector: string, timeoutMs = 20_000): Promise<Frame> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const frame of page.frames()) {
      if (frame.isDetached()) continue;
      const found = await frame.$(selector).catch(() => null);
      if (found) return frame;
    }
    await page.waitForTimeout(200);
  }
  throw new Error(`no frame contains ${selector} after ${timeoutMs} ms (${page.frames().length} frames)`);
}

/** Labels of the open editor tabs. */
export async function editorTabLabels(page: Page): Promise<string[]> {
  return page.locator('.tabs-container .tab .label-name').allInnerTexts();
}
