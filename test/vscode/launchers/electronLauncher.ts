// Runs the suite in a downloaded VS Code desktop (Electron) with @vscode/test-electron, on machines
// that can reach the VS Code update server. The download is kept in the harness cache (see paths.ts).
import { runTests } from '@vscode/test-electron';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { harnessCache, repoRoot, runsDir } from '../../../scripts/harness/paths';
import type { SuiteLaunch } from './launch';

export async function runWithElectron(launch: SuiteLaunch): Promise<number> {
  if (launch.vsix) throw new Error('the installed-.vsix suite runs on code-server (FEDKSEED_VSCODE_LAUNCHER=code-server)');
  mkdirSync(runsDir, { recursive: true });
  const runDir = mkdtempSync(join(runsDir, 'electron-suite-'));
  const workspace = join(runDir, 'workspace');
  mkdirSync(workspace);
  try {
    return await runTests({
      cachePath: join(harnessCache, 'vscode-electron'),
      extensionDevelopmentPath: repoRoot,
      extensionTestsPath: launch.suiteEntry,
      extensionTestsEnv: launch.env,
      launchArgs: [
        workspace,
        '--disable-extensions',
        '--disable-workspace-trust',
        '--skip-welcome',
        '--skip-release-notes',
        `--user-data-dir=${join(runDir, 'user-data')}`,
        `--extensions-dir=${join(runDir, 'extensions')}`,
      ],
    });
  } catch (err) {
    // runTests rejects when the suite fails; the summary file already says which tests.
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
}
