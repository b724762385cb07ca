// One harness session: tools installed, code-server started, chromium open on the workbench with
// this repository loaded as the extension under development. Shared by the extension-host suite
// and the UI test, and torn down completely whatever happens inside.
import { chromium, type Browser, type Page } from 'playwright-core';
import { startCodeServer, type CodeServer, type CodeServerOptions } from './codeServer';
import { ensureHarnessTools } from './install';
import { harnessLog } from './log';
import { repoRoot } from './paths';

export interface WorkbenchSession {
  readonly server: CodeServer;
  readonly browser: Browser;
  readonly page: Page;
  /** Keeps the run folder (logs, user data) after the session for inspection. */
  markFailed(): void;
}

export interface WorkbenchOptions extends CodeServerOptions {
  /**
   * The extension under development: this repository unless given. A run against an installed .vsix
   * names an empty one, since the sources would shadow the installed copy.
   */
  extensionDevelopmentPath?: string;
  /** Absolute path of a test-electron style `run()` module to execute in the extension host. */
  extensionTestsPath?: string;
  /** Environment variables for the extension host. */
  extensionEnvironment?: Record<string, string>;
  /** Runs on the page before the workbench loads (e.g. to expose automation callbacks). */
  beforeLoad?: (page: Page, server: CodeServer) => Promise<void>;
}

const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** The workbench URL that opens `folder` with the payload VS Code's test drivers understand. */
export function workbenchUrl(server: CodeServer, options: WorkbenchOptions): string {
  const remote = (path: string): string => `vscode-remote://${server.authority}${path}`;
  const payload: [string, unknown][] = [['extensionDevelopmentPath', remote(options.extensionDevelopmentPath ?? repoRoot)]];
  if (options.extensionTestsPath) payload.push(['extensionTestsPath', remote(options.extensionTestsPath)]);
  if (options.extensionEnvironment) payload.push(['extensionEnvironment', JSON.stringify(options.extensionEnvironment)]);
  const query = new URLSearchParams({ folder: server.workspace, payload: JSON.stringify(payload) });
  return `${server.origin}/?${query.toString()}`;
}

export async function withWorkbench<T>(options: WorkbenchOptions, body: (session: WorkbenchSession) => Promise<T>): Promise<T> {
  const tools = await ensureHarnessTools();
  const server = await startCodeServer(tools, options);
  harnessLog(`code-server at ${server.origin}, logs in ${server.logFile}`);
  let browser: Browser | undefined;
  let failed = true;
  try {
    browser = await chromium.launch({ executablePath: tools.chromium, headless: true, args: chromiumArgs });
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    await options.beforeLoad?.(page, server);
    await page.goto(workbenchUrl(server, options), { waitUntil: 'domcontentloaded' });
    let markedFailed = false;
    const result = await body({ server, browser, page, markFailed: () => (markedFailed = true) });
    failed = markedFailed;
    return result;
  } finally {
    await browser?.close().catch(() => undefined);
    await server.stop({ keepRunDir: failed || process.env.FEDKSEED_KEEP_RUN === '1' });
  }
}
