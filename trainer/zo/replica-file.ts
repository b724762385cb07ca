// The replica's float32 weights written to a scratch file, for a ParameterSet that keeps S only as its
// coefficients (sums: 'coefficients'): going back to the replica after local steps is then a read of 4
// bytes per parameter instead of a rebuild from every applied seed. The file is written at each
// materialisation (from the very bits the kernels produced) and read back by resetToBase, so it never
// changes a value. It lives in the user's cache folder, not in the system's temporary folder, which is
// memory on many systems; on POSIX it is unlinked as soon as it is open, so nothing is left behind even
// after a crash. A set with sums 'file' keeps its float64 accumulator S in a file of the same kind
// (ScratchFile), so a coefficient change streams S once instead of recomputing it from every applied seed.
import { closeSync, existsSync, mkdirSync, openSync, readSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/** FEDKSEED_SPILL_DIR, else the platform's per-user cache folder + fedkseed/replica. */
export function defaultSpillDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env.FEDKSEED_SPILL_DIR) return env.FEDKSEED_SPILL_DIR;
  if (platform === 'win32') return join(env.LOCALAPPDATA || join(homedir(), 'AppData', 'Local'), 'fedkseed', 'replica');
  if (platform === 'darwin') return join(homedir(), 'Library', 'Caches', 'fedkseed', 'replica');
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'fedkseed', 'replica');
}

/**
 * Free bytes on the filesystem that holds `dir` (its nearest existing ancestor when it is not made yet),
 * or null when the platform cannot tell.
 */
export function freeBytesAt(dir: string): number | null {
  let at = dir;
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  try {
    const fs = statfsSync(at);
    return Number(fs.bavail) * Number(fs.bsize);
  } catch {
    return null;
  }
}

let counter = 0;

/** Values of one typed-array kind by global index, at element offsets: float32 weights, float64 sums. */
type Values = Float32Array | Float64Array;

export class ScratchFile {
  private fd: number | null;
  private readonly path: string;
  private readonly linked: boolean;
  private readonly onExit = (): void => this.close();

  constructor(dir: string, prefix = 'scratch', extension = 'bin') {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter++}.${extension}`);
    this.fd = openSync(this.path, 'w+', 0o600);
    // Windows cannot remove an open file: there it goes on close().
    this.linked = process.platform === 'win32';
    if (!this.linked) rmSync(this.path, { force: true });
    else process.once('exit', this.onExit); // a set never disposed still leaves nothing behind
  }

  /** Writes `data` as the values of global indices offset .. offset + data.length − 1 (offset in elements of data's kind). */
  write(offset: number, data: Values): void {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const at = offset * data.BYTES_PER_ELEMENT;
    for (let done = 0; done < bytes.length;) {
      done += writeSync(this.open(), bytes, done, Math.min(bytes.length - done, 1 << 30), at + done);
    }
  }

  /** Reads the values of global indices offset .. offset + out.length − 1 (offset in elements of out's kind). */
  read(offset: number, out: Values): void {
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    const at = offset * out.BYTES_PER_ELEMENT;
    for (let done = 0; done < bytes.length;) {
      const n = readSync(this.open(), bytes, done, Math.min(bytes.length - done, 1 << 30), at + done);
      if (n <= 0) throw new Error(`the scratch file ${this.path} is shorter than the values read`);
      done += n;
    }
  }

  close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
    if (this.linked) {
      process.off('exit', this.onExit);
      rmSync(this.path, { force: true });
    }
  }

  private open(): number {
    if (this.fd === null) throw new Error('the scratch file was closed');
    return this.fd;
  }
}

/** The replica's float32 weights (sums 'coefficients'). */
export class ReplicaFile extends ScratchFile {
  constructor(dir: string) {
    super(dir, 'replica', 'f32');
  }
}
