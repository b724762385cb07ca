// One prefix for every harness message, so they stand out from test output.
export function harnessLog(message: string): void {
  process.stderr.write(`[harness] ${message}\n`);
}
