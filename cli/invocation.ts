// How the person ran this command, so that the commands the CLI suggests run as typed.
import { basename, relative, resolve, sep } from 'node:path';
import { packageRoot } from '../trainer/paths';

/**
 * The command to suggest: `fedkseed` when it was run by that name (installed on PATH), `npx fedkseed`
 * when run through npx or from inside the package's folder (where npx finds its bin), and
 * `node <path to bin/fedkseed.js>` elsewhere (npx there would ask the registry).
 */
export function invokedAs(argv: readonly string[] = process.argv, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  const script = argv[1] ?? '';
  if (env.npm_command === 'exec' || env.npm_lifecycle_event === 'npx') return 'npx fedkseed';
  if (basename(script) === 'fedkseed' || basename(script) === 'fedkseed.cmd') return 'fedkseed';
  let root: string;
  try {
    root = packageRoot();
  } catch {
    return 'npx fedkseed';
  }
  const here = resolve(cwd);
  if (here === root || here.startsWith(root + sep)) return 'npx fedkseed';
  const bin = resolve(root, 'bin', 'fedkseed.js');
  const rel = relative(here, bin);
  const shown = rel.length < bin.length ? rel : bin;
  return `node ${/\s/.test(shown) ? JSON.stringify(shown) : shown}`;
}

/** A command line to suggest: `fedkseed export --checkpoint …` as this person runs fedkseed. */
export function suggest(args: string): string {
  return `${invokedAs()} ${args}`;
}
