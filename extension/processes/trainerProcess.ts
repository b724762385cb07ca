// The trainer child process, `dist/trainer.js`, with a JSON-RPC connection on its stdio (the contract
// of contracts/trainer-rpc.ts). It exits when its stdin closes. Every notification it sends is checked
// against its schema (contracts/trainer-notifications.ts) as it is read: one that does not fit is
// reported and dropped, so no handler sees it. Request results are checked by whoever asked.
import {
  createMessageConnection,
  Message,
  StreamMessageReader,
  StreamMessageWriter,
  type DataCallback,
  type MessageConnection,
  type MessageReader,
} from 'vscode-jsonrpc/node';
import { checkTrainerNotification } from '../../contracts/trainer-notifications';
import { NodeProcess, type ProcessExit } from './nodeProcess';
import type { Supervised } from './supervisor';

/** A reader that passes on only the trainer notifications whose payload fits their schema. */
function checkedReader(inner: MessageReader, onInvalid: (line: string) => void): MessageReader {
  return {
    onError: inner.onError,
    onClose: inner.onClose,
    onPartialMessage: inner.onPartialMessage,
    listen: (callback: DataCallback) =>
      inner.listen((message) => {
        if (Message.isNotification(message)) {
          const verdict = checkTrainerNotification(message.method, message.params);
          if (verdict && !verdict.ok) return onInvalid(`dropped an invalid ${message.method} notification from the trainer: ${verdict.error}`);
        }
        callback(message);
      }),
    dispose: () => inner.dispose(),
  };
}

export class TrainerProcess implements Supervised {
  readonly connection: MessageConnection;

  private constructor(
    private readonly child: NodeProcess,
    onInvalid: (line: string) => void,
  ) {
    this.connection = createMessageConnection(checkedReader(new StreamMessageReader(child.stdout), onInvalid), new StreamMessageWriter(child.stdin));
    this.connection.listen();
  }

  /** `onStderrLine` also receives the notifications dropped as invalid, unless `onInvalid` takes them. */
  static start(script: string, onStderrLine: (line: string) => void, onInvalid: (line: string) => void = onStderrLine): TrainerProcess {
    return new TrainerProcess(NodeProcess.start(script, [], onStderrLine), onInvalid);
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
