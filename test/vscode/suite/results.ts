// The summary the suite writes for its launcher, which prints it on the last line of the run.
export interface SuiteFailure {
  title: string;
  message: string;
}

export interface SuiteResults {
  passed: number;
  failed: number;
  failures: SuiteFailure[];
  vscodeVersion: string;
  /** Mocha's spec report, line by line. */
  report: string[];
}

/** Environment variable naming the file the suite writes its SuiteResults to. */
export const RESULTS_ENV = 'FEDKSEED_SUITE_RESULTS';

/** Environment variable naming the repository's folder, so a suite can tell the sources from an installed copy. */
export const SOURCES_ENV = 'FEDKSEED_SOURCES';

/** Environment variable with a pattern: only the tests whose full title matches run (mocha's grep). */
export const GREP_ENV = 'FEDKSEED_VSCODE_GREP';
