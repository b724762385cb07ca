// `npm run test:vscode`: builds the extension-host suite, runs it in a real VS Code (code-server by
// default here, the desktop build where it can be downloaded) and prints `N passed, N failed` last.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../../scripts/harness/buildSuite';
import { exitWith } from '../../scripts/harness/exit';
import { harnessLog } from '../../scripts/harness/log';
import { repoRoot } from '../../scripts/harness/paths';
import { chooseLauncher } from './launchers/chooseLauncher';
import { RESULTS_ENV, type SuiteResults } from './suite/results';

const timeoutMs = Number(process.env.FEDKSEED_VSCODE_TIMEOUT_MS ?? 300_000);

function readResults(file: string): SuiteResults | undefined {
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as SuiteResults;
}

async function main(): Promise<number> {
  const started = Date.now();
  if (!existsSync(join(repoRoot, 'dist', 'extension.js'))) throw new Error('dist/extension.js is missing: run "npm run build" first');
  const suiteEntry = await buildSuite();
  const resultsDir = mkdtempSync(join(tmpdir(), 'fedkseed-suite-'));
  const resultsFile = join(resultsDir, 'results.json');
  try {
    const launcher = await chooseLauncher();
    harnessLog(`running the extension-host suite with ${launcher.name}`);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const outcome = await Promise.race([launcher.launch({ suiteEntry, env: { [RESULTS_ENV]: resultsFile } }), timedOut]);
    clearTimeout(timer);

    const results = readResults(resultsFile);
    const passed = results?.passed ?? 0;
    let failed = results?.failed ?? 0;
    for (const line of results?.report ?? []) process.stdout.write(`${line}\n`);
    for (const failure of results?.failures ?? []) process.stderr.write(`FAILED ${failure.title}\n${failure.message}\n`);
    if (outcome === 'timeout') {
      process.stderr.write(`the suite did not finish within ${timeoutMs / 1000} s\n`);
      failed += 1;
    } else if (!results) {
      process.stderr.write(`the extension host exited with code ${outcome} without reporting results\n`);
      failed += 1;
    } else if (outcome !== 0 && failed === 0) {
      process.stderr.write(`the extension host exited with code ${outcome} although every test passed\n`);
      failed += 1;
    }
    if (results) harnessLog(`VS Code ${results.vscodeVersion}; suite took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    console.log(`${passed} passed, ${failed} failed`);
    return failed > 0 ? 1 : 0;
  } finally {
    rmSync(resultsDir, { recursive: true, force: true });
  }
}

exitWith(main);
