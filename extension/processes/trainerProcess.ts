// The trainer child process, `dist/trainer.js`, with a JSON-RPC connection on its stdio (the contract
// of contracts/trainer-rpc.ts). It exits when its stdin closes.
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { NodeProcess, type ProcessExit } from './nodeProcess';
import type { Supervised } from './supervisor';

export class TrainerProcess implements Supervised {
  readonly connection: MessageConnection;

  private constructor(private readonly child: NodeProcess) {
    this.connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
    this.connection.listen();
  }

  static start(script: string, onStderrLine: (line: string) => void): TrainerProcess {
    return new TrainerProcess(NodeProcess.start(script, [], onStderrLine));
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

  get exited(): Promise<ProcessExit> {
    return this.child.exited;
  }

  async kill(graceMs?: number): Promise<void> {
    this.connection.dispose();
    await this.child.kill(graceMs);
  }
}
