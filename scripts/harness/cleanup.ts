// Stops what a harness run started (code-server's process group, the browser) however the run
// ends: normal return, thrown error, Ctrl-C, SIGTERM from CI, or process.exit.
const syncCleanups = new Set<() => void>();
let handlersInstalled = false;

function runSyncCleanups(): void {
  for (const cleanup of [...syncCleanups].reverse()) {
    try {
      cleanup();
    } catch {
      // Best effort: the process is going away.
    }
  }
  syncCleanups.clear();
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', runSyncCleanups);
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.on(signal, () => {
      runSyncCleanups();
      process.exit(code);
    });
  }
}

/** Registers a synchronous last-resort cleanup; the returned function unregisters it. */
export function registerExitCleanup(cleanup: () => void): () => void {
  installHandlers();
  syncCleanups.add(cleanup);
  return () => syncCleanups.delete(cleanup);
}

/** Sends `signal` to a whole process group (the child was spawned detached, so it leads one). */
export function killProcessGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}
