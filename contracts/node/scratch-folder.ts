// The product's working folder, `.fedkseed/` (a server's store, simulate's runs, the extension's exports): kept
// out of git. Node-only, like model-location.ts beside it: the webviews may not import contracts/node/.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';

/**
 * For a path inside a `.fedkseed` folder, makes sure that folder exists and holds a `.gitignore` of
 * `*`, so that stores, runs and checkpoints written there never show up as changes in a work tree.
 */
export const WORK_FOLDER = '.fedkseed';

export function ignoreScratchFolder(path: string): void {
  const parts = resolve(path).split(sep);
  const at = parts.lastIndexOf(WORK_FOLDER);
  if (at < 0) return;
  const folder = parts.slice(0, at + 1).join(sep) || sep;
  const ignore = join(folder, '.gitignore');
  if (existsSync(ignore)) return;
  try {
    mkdirSync(folder, { recursive: true });
    writeFileSync(ignore, '# written by FedKSeed: its stores, runs, checkpoints and exports stay out of git\n*\n', { flag: 'wx' });
  } catch {
    // A read-only or raced folder: the store, run or export reports its own errors.
  }
}
