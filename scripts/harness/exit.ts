// How a test runner of the harness ends: its exit code, or on a crash the stack and the closing line
// CI reads ('0 passed, 1 failed'), so a broken runner never looks like a run without tests.
export function exitWith(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      console.log('0 passed, 1 failed');
      process.exit(1);
    },
  );
}
