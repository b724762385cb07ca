// Runs the suite in code-server's real Node extension host, driven by chromium: the workbench's
// smoke-test driver reports the suite's console output and exit code through two page callbacks.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { harnessLog } from '../../../scripts/harness/log';
import { repoRoot } from '../../../scripts/harness/paths';
import { withWorkbench } from '../../../scripts/harness/workbench';
import type { SuiteLaunch } from './launch';

/** One line of the workbench's log (its own messages and the extension host's console output). */
function formatAutomationLog(level: string, args: unknown): string {
  const parts: unknown[] = Array.isArray(args) ? args : [args];
  const text = parts.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(' ');
  return `[${level}] ${text}\n`;
}

export async function runWithCodeServer(launch: SuiteLaunch): Promise<number> {
  const verbose = process.env.FEDKSEED_HARNESS_VERBOSE === '1';
  let reportExit: (code: number) => void = () => undefined;
  const exitCode = new Promise<number>((resolve) => (reportExit = resolve));
  return withWorkbench(
    {
      label: launch.vsix ? 'vscode-installed' : 'vscode-suite',
      vsix: launch.vsix,
      extensionDevelopmentPath: launch.vsix ? join(repoRoot, 'test', 'vscode', 'installed', 'host') : undefined,
      extensionTestsPath: launch.suiteEntry,
      extensionEnvironment: launch.env,
      beforeLoad: async (page, server) => {
        // The workbench is chatty; its log goes to a file (kept on failure) unless asked for.
        const logFile = join(server.runDir, 'workbench.log');
        harnessLog(`workbench log: ${logFile}`);
        await page.exposeFunction('codeAutomationLog', (level: string, args: unknown) => {
          const line = formatAutomationLog(level, args);
          appendFileSync(logFile, line);
          if (verbose) process.stdout.write(line);
        });
        await page.exposeFunction('codeAutomationExit', (code: unknown) => reportExit(typeof code === 'number' ? code : 1));
      },
    },
    async (session) => {
      const code = await exitCode;
      if (code !== 0) session.markFailed();
      return code;
    },
  );
}
