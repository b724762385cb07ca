// `npm run test:vscode`: builds the extension-host suite, runs it in a real VS Code (code-server by
// default here, the desktop build where it can be downloaded) and prints `N passed, N failed` last.
// `npm run test:vsix` (`--installed`): packages the .vsix, installs it into a fresh code-server the way
// a user would, and runs the `installed` suite against that copy.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../../scripts/harness/buildSuite';
import { exitWith } from '../../scripts/harness/exit';
import { ensureHarnessTools, runCommand } from '../../scripts/harness/install';
import { harnessLog } from '../../scripts/harness/log';
import { repoRoot } from '../../scripts/harness/paths';
import { chooseLauncher } from './launchers/chooseLauncher';
import { runWithCodeServer } from './launchers/codeServerLauncher';
import { GREP_ENV, RESULTS_ENV, SOURCES_ENV, type SuiteResults } from './suite/results';

const timeoutMs = Number(process.env.FEDKSEED_VSCODE_TIMEOUT_MS ?? 300_000);
const installed = process.argv.includes('--installed');

function readResults(file: string): SuiteResults | undefined {
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as SuiteResults;
}

/** `npm run package` for this machine's platform; returns the .vsix it wrote. */
async function packageExtension(): Promise<string> {
  const target = `${process.platform}-${process.arch}`;
  const started = Date.now();
  await runCommand(process.execPath, [join(repoRoot, 'scripts', 'package.mjs'), '--target', target], { cwd: repoRoot });
  const vsix = join(repoRoot, 'out', `fedkseed-${target}.vsix`);
  if (!existsSync(vsix)) throw new Error(`packaging finished but ${vsix} does not exist`);
  harnessLog(`packaged ${vsix} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return vsix;
}

async function main(): Promise<number> {
  const started = Date.now();
  if (!existsSync(join(repoRoot, 'dist', 'extension.js'))) throw new Error('dist/extension.js is missing: run "npm run build" first');
  const suiteEntry = await buildSuite(installed ? 'installed' : 'suite');
  const vsix = installed ? await packageExtension() : undefined;
  const resultsDir = mkdtempSync(join(tmpdir(), 'fedkseed-suite-'));
  const resultsFile = join(resultsDir, 'results.json');
  try {
    // Installing a .vsix needs no download, so that check runs on code-server on every machine.
    const launcher = installed ? { name: 'code-server', launch: runWithCodeServer } : await chooseLauncher();
    // A first run installs the tools (minutes); the suite's time limit starts after that.
    if (launcher.name === 'code-server') await ensureHarnessTools();
    harnessLog(`running the ${installed ? 'installed-.vsix' : 'extension-host'} suite with ${launcher.name}`);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    // FEDKSEED_VSCODE_GREP=<pattern> runs only the tests whose full title matches (mocha's grep).
    const grep = process.env[GREP_ENV];
    const env = { [RESULTS_ENV]: resultsFile, [SOURCES_ENV]: repoRoot, ...(grep ? { [GREP_ENV]: grep } : {}) };
    const outcome = await Promise.race([launcher.launch({ suiteEntry, env, vsix }), timedOut]);
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
