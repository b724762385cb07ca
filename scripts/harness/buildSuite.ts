// Bundles the extension-host suite into plain CommonJS under dist/test/vscode/suite/, because the
// extension host loads JavaScript only. `vscode` and `mocha` stay external (mocha is resolved from
// node_modules at run time; `vscode` is provided by the host).
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './paths';

export const suiteSourceDir = join(repoRoot, 'test', 'vscode', 'suite');
export const suiteOutDir = join(repoRoot, 'dist', 'test', 'vscode', 'suite');
export const suiteEntry = join(suiteOutDir, 'index.js');

export async function buildSuite(): Promise<string> {
  const entries = readdirSync(suiteSourceDir)
    .filter((f) => f === 'index.ts' || f.endsWith('.test.ts'))
    .map((f) => join(suiteSourceDir, f));
  rmSync(suiteOutDir, { recursive: true, force: true });
  await build({
    entryPoints: entries,
    outdir: suiteOutDir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: 'inline',
    logLevel: 'warning',
    external: ['vscode', 'mocha'],
  });
  return suiteEntry;
}
