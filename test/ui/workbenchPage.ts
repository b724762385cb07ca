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

/** Texts of the notification toasts and the notification center's entries shown now. */
export async function notificationTexts(page: Page): Promise<string[]> {
  return page.locator('.notifications-toasts .notification-list-item-message, .notifications-center .notification-list-item-message').allInnerTexts();
}

/**
 * Waits until a notification whose text matches `pattern` is there; returns its text. A headless page
 * may not show toasts, so the notification center is opened to read the list.
 */
export async function waitForNotification(page: Page, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = (await notificationTexts(page)).find((t) => pattern.test(t));
    if (match) return match;
    if (
      !(await page
        .locator('.notifications-center.visible')
        .isVisible()
        .catch(() => false))
    ) {
      await runFromCommandPalette(page, 'Notifications: Show Notifications').catch(() => undefined);
    }
    await page.waitForTimeout(500);
  }
  throw new Error(`no notification matched ${pattern} within ${timeoutMs} ms; shown: ${(await notificationTexts(page)).join(' | ')}`);
}

/** The data-testid of the element that has keyboard focus inside a webview frame (custom elements included). */
export async function focusedTestId(frame: Frame): Promise<string | null> {
  return frame.evaluate(() => {
    let active: Element | null = document.activeElement;
    while (active && !active.getAttribute('data-testid') && active.parentElement) active = active.parentElement;
    return active?.getAttribute('data-testid') ?? null;
  });
}

/** Presses Tab inside the webview until the element with `testId` has focus (keyboard only); fails after `maxTabs`. */
export async function tabTo(page: Page, frame: Frame, testId: string, maxTabs = 30): Promise<void> {
  for (let i = 0; i < maxTabs; i++) {
    if ((await focusedTestId(frame)) === testId) return;
    await page.keyboard.press('Tab');
  }
  throw new Error(`${maxTabs} presses of Tab did not reach [data-testid="${testId}"] (focus is on ${await focusedTestId(frame)})`);
}
