// The VS Code test harness installs code-server with an npm of its own, started from inside `npm test`.
// That npm must describe itself (its own Node in the user agent, which code-server's postinstall
// checks), not the npm that runs the tests; the user's own npm settings must still reach it.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { npmEnvForNode } from '../../scripts/harness/install';

test('a child npm started from inside an npm script reports its own Node and keeps the user settings', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'fedkseed-npm-env-'));
  try {
    // What an outer `npm test` on another Node exports to its scripts, plus a setting of the user's.
    const outer: NodeJS.ProcessEnv = {
      ...process.env,
      npm_config_user_agent: 'npm/0.0.0 node/v0.0.0 linux x64 workspaces/false',
      npm_lifecycle_event: 'test',
      npm_config_local_prefix: scratch,
      npm_config_fund: 'false',
    };
    const nodeHome = dirname(dirname(process.execPath));
    const printed = execFileSync('npm', ['exec', '-c', 'node -e "console.log(process.env.npm_config_user_agent, process.env.npm_config_fund)"'], {
      cwd: scratch,
      env: npmEnvForNode(outer, nodeHome),
      encoding: 'utf8',
    });
    assert.match(printed, new RegExp(`node/${process.version.replace(/\./g, '\\.')} `), `child npm's user agent: ${printed}`);
    assert.match(printed, / false\s*$/, 'the user setting npm_config_fund reaches the child npm');
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});
