// Starts code-server (VS Code in a browser, with a real Node extension host) for one test run, with
// every folder it writes inside the run folder, and stops its whole process tree afterwards.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killProcessGroup, registerExitCleanup } from './cleanup';
import { runCommand, type HarnessTools } from './install';
import { harnessLog } from './log';
import { runsDir } from './paths';

export interface CodeServer {
  readonly origin: string; // http://127.0.0.1:PORT
  readonly authority: string; // 127.0.0.1:PORT, for vscode-remote:// URIs
  readonly runDir: string;
  readonly workspace: string;
  /** Where extensions are installed (empty unless a .vsix was installed). */
  readonly extensionsDir: string;
  readonly logFile: string;
  /** Stops the process tree; the run folder is kept when `keepRunDir` (to read its logs). */
  stop(options?: { keepRunDir?: boolean }): Promise<void>;
}

/** User settings that keep the workbench quiet and deterministic for tests. */
const testUserSettings = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.colorTheme': 'Default Dark Modern',
  'security.workspace.trust.enabled': false,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'chat.disableAIFeatures': true,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
};

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function waitForHealth(origin: string, exited: () => string | undefined, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const exit = exited();
    if (exit) throw new Error(`code-server exited before it was ready (${exit})`);
    try {
      const response = await fetch(`${origin}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`code-server did not answer ${origin}/healthz within ${timeoutMs / 1000} s`);
}

/** Run folders are kept after failures for inspection; after a day they are only clutter. */
function pruneOldRuns(maxAgeMs = 24 * 3600_000): void {
  for (const name of readdirSync(runsDir)) {
    const dir = join(runsDir, name);
    if (Date.now() - statSync(dir).mtimeMs > maxAgeMs) rmSync(dir, { recursive: true, force: true });
  }
}

export interface CodeServerOptions {
  /** Names the run folder under .cache/harness/runs/. */
  label: string;
  /** A packaged extension to install into the run's fresh extensions folder before the server starts. */
  vsix?: string;
}

export async function startCodeServer(tools: HarnessTools, options: CodeServerOptions): Promise<CodeServer> {
  const { label } = options;
  mkdirSync(runsDir, { recursive: true });
  pruneOldRuns();
  const runDir = mkdtempSync(join(runsDir, `${label}-`));
  // Unix sockets of the server live in TMPDIR, whose path must stay short (108-byte limit).
  const shortTmp = mkdtempSync(join(tmpdir(), 'fks-'));
  const dirs = {
    userData: join(runDir, 'user-data'),
    extensions: join(runDir, 'extensions'),
    xdgConfig: join(runDir, 'xdg-config'),
    xdgData: join(runDir, 'xdg-data'),
    xdgCache: join(runDir, 'xdg-cache'),
    workspace: join(runDir, 'workspace'),
  };
  for (const dir of Object.values(dirs)) mkdirSync(dir, { recursive: true });
  mkdirSync(join(dirs.userData, 'User'), { recursive: true });
  writeFileSync(join(dirs.userData, 'User', 'settings.json'), JSON.stringify(testUserSettings, null, 2));

  const port = await freePort();
  const authority = `127.0.0.1:${port}`;
  const configFile = join(runDir, 'config.yaml');
  writeFileSync(configFile, `bind-addr: ${authority}\nauth: none\ncert: false\n`);
  const logFile = join(runDir, 'code-server.log');
  const log = createWriteStream(logFile);

  const args = [
    tools.codeServerEntry,
    '--config',
    configFile,
    '--user-data-dir',
    dirs.userData,
    '--extensions-dir',
    dirs.extensions,
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--ignore-last-opened',
    '--reconnection-grace-time',
    '5',
    '--vscode-option',
    'enable-smoke-test-driver',
  ];
  const env = {
    ...process.env,
    XDG_CONFIG_HOME: dirs.xdgConfig,
    XDG_DATA_HOME: dirs.xdgData,
    XDG_CACHE_HOME: dirs.xdgCache,
    TMPDIR: shortTmp,
    EXTENSIONS_GALLERY: '{"serviceUrl":""}',
    VSCODE_PROXY_URI: '',
  };
  if (options.vsix) {
    // The same command a user runs (`code-server --install-extension file.vsix`), into this run's folders.
    await runCommand(
      tools.node,
      [tools.codeServerEntry, '--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions, '--install-extension', options.vsix],
      {
        cwd: dirs.workspace,
        env,
      },
    );
  }
  const child = spawn(tools.node, args, {
    cwd: dirs.workspace,
    detached: true, // its own process group, so the whole tree can be signalled at once
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  // Two pipes share one file: neither may end it; stop() does.
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  log.on('error', () => undefined);
  let exitDescription: string | undefined;
  const exited = new Promise<void>((r) =>
    child.on('exit', (code, signal) => {
      exitDescription = signal ?? `exit ${code}`;
      r();
    }),
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${tools.node}`);
  const unregister = registerExitCleanup(() => killProcessGroup(pid, 'SIGKILL'));

  let stopped = false;
  const stop = async (options: { keepRunDir?: boolean } = {}): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (exitDescription === undefined) {
      killProcessGroup(pid, 'SIGTERM');
      const killed = await Promise.race([exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 5000))]);
      if (!killed) killProcessGroup(pid, 'SIGKILL');
    }
    // Children of the server (extension host, file watcher) share its group: make sure none is left.
    killProcessGroup(pid, 'SIGKILL');
    unregister();
    log.end();
    rmSync(shortTmp, { recursive: true, force: true });
    if (options.keepRunDir) harnessLog(`run folder kept for inspection: ${runDir}`);
    else rmSync(runDir, { recursive: true, force: true });
  };

  const origin = `http://${authority}`;
  try {
    await waitForHealth(origin, () => exitDescription, 60_000);
  } catch (err) {
    const tail = readFileSync(logFile, 'utf8').slice(-3000);
    await stop({ keepRunDir: true });
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- code-server log ---\n${tail}`, { cause: err });
  }
  return { origin, authority, runDir, workspace: dirs.workspace, extensionsDir: dirs.extensions, logFile, stop };
}
