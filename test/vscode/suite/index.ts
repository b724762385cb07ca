// Extension-host entry of the suite (the test-electron `run()` contract, also used by code-server's
// extensionTestsPath): runs every bundled *.test.js next to this file with mocha and writes a
// summary for the launcher.
import Mocha from 'mocha';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { format } from 'node:util';
import * as vscode from 'vscode';
import { GREP_ENV, RESULTS_ENV, type SuiteResults } from './results';

export async function run(): Promise<void> {
  const report: string[] = [];
  const say = (...args: unknown[]): void => {
    const line = format(...args);
    report.push(line);
    console.log(line);
  };
  // Mocha's reporters print through this hook; the launcher shows the collected report.
  Mocha.reporters.Base.consoleLog = say;
  say(`VS Code ${vscode.version} (${vscode.env.appName}, ${vscode.env.appHost})`);
  const grep = process.env[GREP_ENV];
  const mocha = new Mocha({ ui: 'bdd', color: false, reporter: 'spec', timeout: 30_000, ...(grep ? { grep } : {}) });
  for (const file of readdirSync(__dirname)
    .filter((f) => f.endsWith('.test.js'))
    .sort())
    mocha.addFile(join(__dirname, file));
  await mocha.loadFilesAsync();

  const results: SuiteResults = { passed: 0, failed: 0, failures: [], vscodeVersion: vscode.version, report };
  await new Promise<void>((resolve) => {
    const runner = mocha.run(() => resolve());
    runner.on('pass', () => results.passed++);
    runner.on('fail', (test, err: unknown) => {
      results.failed++;
      results.failures.push({ title: test.fullTitle(), message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    });
  });

  const resultsFile = process.env[RESULTS_ENV];
  if (resultsFile) writeFileSync(resultsFile, JSON.stringify(results, null, 2));
  if (results.failed > 0) throw new Error(`${results.failed} extension-host test(s) failed`);
}
