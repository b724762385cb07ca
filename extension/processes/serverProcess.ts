// The local federation server's child process, `dist/run-server.js`, to the contract of
// contracts/server-process.ts: its spec as the argument, its events as JSON lines on stdout. It runs
// apart from the trainer so that training's blocking forward passes never delay its heartbeats and a
// trainer crash does not end the federation; it exits when its stdin closes.
import { createInterface } from 'node:readline';
import { parseServerProcessEvent, type ServerListening, type ServerProcessSpec, type ServerProgress } from '../../contracts/server-process';
import { NodeProcess, type ProcessExit } from './nodeProcess';
import type { Supervised } from './supervisor';

/** The server process said why it could not start. */
export class ServerStartError extends Error {
  constructor(
    message: string,
    readonly addressInUse: boolean,
  ) {
    super(message);
    this.name = 'ServerStartError';
  }
}

export class ServerProcess implements Supervised {
  /** Resolves once the server listens; rejects when it fails or exits first. */
  readonly listening: Promise<ServerListening>;
  /** Once the process has exited and its last event line has been read (so a `failed` line is never lost to the exit). */
  readonly exited: Promise<ProcessExit>;

  private constructor(
    private readonly child: NodeProcess,
    onProgress: (progress: ServerProgress) => void,
  ) {
    const lines = createInterface({ input: child.stdout });
    const read = new Promise<void>((resolve) => lines.once('close', resolve));
    this.exited = Promise.all([child.exited, read]).then(([exit]) => exit);
    this.listening = new Promise((resolve, reject) => {
      lines.on('line', (line) => {
        const e = parseServerProcessEvent(line);
        if (e?.event === 'listening') resolve(e);
        else if (e?.event === 'failed') reject(new ServerStartError(e.message, e.addressInUse));
        else if (e) onProgress(e);
      });
      void this.exited.then((exit) =>
        reject(new Error(`the federation server exited while starting (${exit.signal ?? `exit code ${exit.code}`}); see the FedKSeed log`)),
      );
    });
    // A start that fails is reported to whoever waits for it; nobody may be waiting after a restart.
    this.listening.catch(() => undefined);
  }

  static start(script: string, spec: ServerProcessSpec, onStderrLine: (line: string) => void, onProgress: (progress: ServerProgress) => void): ServerProcess {
    return new ServerProcess(
      NodeProcess.start(script, [JSON.stringify({ ...spec, exitWithStdin: true } satisfies ServerProcessSpec)], onStderrLine),
      onProgress,
    );
  }

  get commandLine(): string {
    return this.child.commandLine;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.child.alive;
  }

  kill(graceMs?: number): Promise<void> {
    return this.child.kill(graceMs);
  }
}
