// One Node child process of the extension: `process.execPath <script> [args]` (the extension host's own
// Node; Electron runs as Node with ELECTRON_RUN_AS_NODE). It leads its own process group, so stopping it
// signals everything it started, and its stdin is a pipe that closes when the extension host goes away.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class NodeProcess {
  readonly exited: Promise<ProcessExit>;
  readonly stdin: Writable;
  readonly stdout: Readable;
  private exit: ProcessExit | undefined;

  private constructor(
    private readonly child: ChildProcess,
    readonly commandLine: string,
    onStderrLine: (line: string) => void,
  ) {
    if (!child.stdout || !child.stdin || !child.stderr) throw new Error(`${commandLine} has no stdio pipes`);
    this.stdin = child.stdin;
    this.stdout = child.stdout;
    createInterface({ input: child.stderr }).on('line', onStderrLine);
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      }),
    );
    // A write to a dead child fails with EPIPE; the exit handler reports the death instead.
    child.stdin.on('error', () => undefined);
  }

  static start(script: string, args: readonly string[], onStderrLine: (line: string) => void): NodeProcess {
    const child = spawn(process.execPath, [script, ...args], {
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      windowsHide: true,
    });
    child.on('error', (err) => onStderrLine(`could not start ${script}: ${err.message}`));
    return new NodeProcess(child, `${process.execPath} ${script}`, onStderrLine);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once the process is gone. */
  async kill(graceMs = 2000): Promise<void> {
    if (!this.alive) return;
    this.signalGroup('SIGTERM');
    const exited = await Promise.race([this.exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), graceMs))]);
    if (!exited) this.signalGroup('SIGKILL');
    await this.exited;
  }

  private signalGroup(signal: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      if (process.platform === 'win32') this.child.kill(signal);
      else process.kill(-pid, signal);
    } catch {
      // already gone
    }
  }
}
