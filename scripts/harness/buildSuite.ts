// Bundles an extension-host suite into plain CommonJS under dist/test/vscode/<name>/, because the
// extension host loads JavaScript only. `vscode` and `mocha` stay external (mocha is resolved from
// node_modules at run time; `vscode` is provided by the host).
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { repoRoot } from './paths';

/**
 * The suites under test/vscode/: `suite` runs against the extension's sources (the development
 * path), `installed` against the packaged .vsix installed into a fresh VS Code. Both share the
 * mocha entry `suite/index.ts`, which runs every *.test.js bundled beside it.
 */
export type SuiteName = 'suite' | 'installed';

export async function buildSuite(name: SuiteName = 'suite'): Promise<string> {
  const sourceDir = join(repoRoot, 'test', 'vscode', name);
  const outDir = join(repoRoot, 'dist', 'test', 'vscode', name);
  // Flat output: the mocha entry finds the tests beside itself.
  const tests = readdirSync(sourceDir)
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => ({ in: join(sourceDir, f), out: basename(f, '.ts') }));
  rmSync(outDir, { recursive: true, force: true });
  await build({
    entryPoints: [{ in: join(repoRoot, 'test', 'vscode', 'suite', 'index.ts'), out: 'index' }, ...tests],
    outdir: outDir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: 'inline',
    logLevel: 'warning',
    external: ['vscode', 'mocha'],
  });
  return join(outDir, 'index.js');
}
