// A minimal sequential test runner for the UI test: named steps against one live workbench, a
// screenshot when a step fails, and the `N passed, N failed` summary line.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';

export interface UiTest {
  name: string;
  run(page: Page): Promise<void>;
}

export interface UiSummary {
  passed: number;
  failed: number;
}

function fileSafe(name: string): string {
  return name
    .replace(/[^a-z0-9]+/gi, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();
}

export async function runUiTests(page: Page, tests: UiTest[], screenshotsDir: string): Promise<UiSummary> {
  mkdirSync(screenshotsDir, { recursive: true });
  const summary: UiSummary = { passed: 0, failed: 0 };
  for (const test of tests) {
    const started = Date.now();
    try {
      await test.run(page);
      summary.passed++;
      console.log(`  ✔ ${test.name} (${Date.now() - started} ms)`);
    } catch (err) {
      summary.failed++;
      console.log(`  ✘ ${test.name}`);
      console.error(`    ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`.replace(/\n/g, '\n    '));
      await page.screenshot({ path: join(screenshotsDir, `failed-${fileSafe(test.name)}.png`) }).catch(() => undefined);
    }
  }
  return summary;
}
