#!/usr/bin/env node
// Packages the extension as a platform-specific .vsix. The bundles need only the modules esbuild keeps
// external (native code): they are staged under dist/node_modules, with onnxruntime-node's binaries for
// the target platform alone, so the package holds ~50 MB instead of every platform's 290 MB.
// Usage: node scripts/package.mjs [--target linux-x64|linux-arm64|darwin-arm64|win32-x64|win32-arm64]
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const arg = process.argv.indexOf('--target');
const target = arg > 0 ? process.argv[arg + 1] : `${process.platform}-${process.arch}`;
const [platform, arch] = target.split('-');
const RUNTIME_ROOTS = ['onnxruntime-node', 'classic-level'];

/** A package and everything it depends on at run time, as folders under node_modules. */
function closure(names, seen = new Set()) {
  for (const name of names) {
    if (seen.has(name)) continue;
    const manifest = join(root, 'node_modules', name, 'package.json');
    if (!existsSync(manifest)) continue; // optional dependency not installed (e.g. bufferutil)
    seen.add(name);
    closure(Object.keys(JSON.parse(readFileSync(manifest, 'utf8')).dependencies ?? {}), seen);
  }
  return seen;
}

const staged = join(root, 'dist', 'node_modules');
rmSync(staged, { recursive: true, force: true });
execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs'), '--production'], { stdio: 'inherit' });
for (const name of closure(RUNTIME_ROOTS)) {
  const from = join(root, 'node_modules', name);
  const binaries = join(from, 'bin', 'napi-v6');
  cpSync(from, join(staged, name), {
    recursive: true,
    // onnxruntime-node: only the target's native folder; every other platform's binaries stay out.
    filter: (src) => !src.startsWith(binaries + '/') || src.startsWith(join(binaries, platform, arch)) || src === join(binaries, platform),
  });
}
if (!existsSync(join(staged, 'onnxruntime-node', 'bin', 'napi-v6', platform, arch))) {
  throw new Error(`onnxruntime-node ships no binaries for ${target}`);
}
mkdirSync(join(root, 'out'), { recursive: true });
try {
  execFileSync(
    process.execPath,
    [
      join(root, 'node_modules', '@vscode', 'vsce', 'vsce'),
      'package',
      '--no-dependencies',
      '--no-rewrite-relative-links',
      '--allow-missing-repository',
      '--target',
      target,
      '--out',
      join(root, 'out', `fedkseed-${target}.vsix`),
    ],
    { cwd: root, stdio: 'inherit' },
  );
} finally {
  rmSync(staged, { recursive: true, force: true });
}
