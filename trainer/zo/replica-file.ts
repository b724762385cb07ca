// The replica's float32 weights written to a scratch file, for a ParameterSet that keeps S only as its
// coefficients (sums: 'coefficients'): going back to the replica after local steps is then a read of 4
// bytes per parameter instead of a rebuild from every applied seed. The file is written at each
// materialisation (from the very bits the kernels produced) and read back by resetToBase, so it never
// changes a value. It lives in the user's cache folder, not in the system's temporary folder, which is
// memory on many systems; on POSIX it is unlinked as soon as it is open, so nothing is left behind even
// after a crash.
import { closeSync, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** FEDKSEED_SPILL_DIR, else the platform's per-user cache folder + fedkseed/replica. */
export function defaultSpillDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env.FEDKSEED_SPILL_DIR) return env.FEDKSEED_SPILL_DIR;
  if (platform === 'win32') return join(env.LOCALAPPDATA || join(homedir(), 'AppData', 'Local'), 'fedkseed', 'replica');
  if (platform === 'darwin') return join(homedir(), 'Library', 'Caches', 'fedkseed', 'replica');
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'fedkseed', 'replica');
}

let counter = 0;

export class ReplicaFile {
  private fd: number | null;
  private readonly path: string;
  private readonly linked: boolean;
  private readonly onExit = (): void => this.close();

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, `replica-${process.pid}-${Date.now().toString(36)}-${counter++}.f32`);
    this.fd = openSync(this.path, 'w+', 0o600);
    // Windows cannot remove an open file: there it goes on close().
    this.linked = process.platform === 'win32';
    if (!this.linked) rmSync(this.path, { force: true });
    else process.once('exit', this.onExit); // a set never disposed still leaves nothing behind
  }

  /** Writes `data` as the values of global indices offset .. offset + data.length − 1. */
  write(offset: number, data: Float32Array): void {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    for (let done = 0; done < bytes.length;) {
      done += writeSync(this.open(), bytes, done, Math.min(bytes.length - done, 1 << 30), offset * 4 + done);
    }
  }

  /** Reads the values of global indices offset .. offset + out.length − 1. */
  read(offset: number, out: Float32Array): void {
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    for (let done = 0; done < bytes.length;) {
      const n = readSync(this.open(), bytes, done, Math.min(bytes.length - done, 1 << 30), offset * 4 + done);
      if (n <= 0) throw new Error(`the replica file ${this.path} is shorter than the weights`);
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
    if (this.fd === null) throw new Error('the replica file was closed');
    return this.fd;
  }
}
