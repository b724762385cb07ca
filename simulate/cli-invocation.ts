// How to start another `fedkseed` process from this one: the built bundle (dist/cli.js) when running
// from it, else the TypeScript entry through tsx's loader (running from source, as the tests do).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../trainer/paths';

export interface Invocation {
  readonly command: string;
  /** Arguments before the subcommand. */
  readonly args: readonly string[];
}

export function fedkseedInvocation(): Invocation {
  return entryInvocation('cli/main.ts', 'dist/cli.js');
}

/**
 * A process entry of the product: its bundle (relative to the package root) when this process runs
 * from bundles, else its TypeScript source through tsx.
 */
export function entryInvocation(source: string, bundle: string): Invocation {
  const root = packageRoot();
  if (!__filename.endsWith('.ts')) return { command: process.execPath, args: [join(root, bundle)] };
  const entry = join(root, source);
  if (!existsSync(entry)) throw new Error(`cannot find the entry ${entry}`);
  // An absolute loader URL, so the child does not depend on its working directory to find tsx.
  const loader = pathToFileURL(createRequire(join(root, 'package.json')).resolve('tsx')).href;
  return { command: process.execPath, args: ['--import', loader, entry] };
}
