// One trainer child process: `node dist/trainer.js` (the extension host's own Node; Electron runs as
// Node with ELECTRON_RUN_AS_NODE) with a JSON-RPC connection on its stdio. It leads its own process
// group, so stopping it signals everything it started.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';

export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class TrainerProcess {
  readonly connection: MessageConnection;
  readonly exited: Promise<ProcessExit>;
  private exit: ProcessExit | undefined;

  private constructor(
    private readonly child: ChildProcess,
    onStderrLine: (line: string) => void,
  ) {
    if (!child.stdout || !child.stdin || !child.stderr) throw new Error('the trainer process has no stdio pipes');
    this.connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
    createInterface({ input: child.stderr }).on('line', onStderrLine);
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      }),
    );
    // A write to a dead child fails with EPIPE; the exit handler reports the death instead.
    child.stdin.on('error', () => undefined);
    this.connection.listen();
  }

  static start(script: string, onStderrLine: (line: string) => void): TrainerProcess {
    const child = spawn(process.execPath, [script], {
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      windowsHide: true,
    });
    child.on('error', (err) => onStderrLine(`could not start the trainer: ${err.message}`));
    return new TrainerProcess(child, onStderrLine);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once the process is gone. */
  async kill(graceMs = 2000): Promise<void> {
    this.connection.dispose();
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
