// Keeps one child process alive while it is wanted: starts it on first use, prepares each new process
// (handlers, initialize, waiting for it to listen), restarts it after an unexpected exit within a
// restart budget, and when the budget is spent stops trying and tells the user, with the logs one
// click away. The trainer and the local federation server are each supervised by one.
import * as vscode from 'vscode';
import type { ProcessExit } from './nodeProcess';
import { RestartBudget } from './restartBudget';

/** What a supervisor needs of a process. */
export interface Supervised {
  readonly commandLine: string;
  readonly pid: number | undefined;
  readonly alive: boolean;
  readonly exited: Promise<ProcessExit>;
  /** Stops the process and everything it started; resolves once it is gone. */
  kill(graceMs?: number): Promise<void>;
}

export interface SupervisorOptions<P extends Supervised, R> {
  /** Names the process in logs and messages ("trainer", "federation server"). */
  readonly role: string;
  readonly log: vscode.LogOutputChannel;
  /** Starts a new process; a restart calls it again. */
  readonly launch: () => P;
  /** Called with each new process before it is used (register handlers, send initialize, wait until it listens, …): what users of the process get. */
  readonly prepare: (process: P) => Promise<R>;
  readonly budget?: RestartBudget;
}

export interface UnexpectedExit {
  readonly exit: ProcessExit;
  readonly restarting: boolean;
}

export class Supervisor<P extends Supervised, R> implements vscode.Disposable {
  private process: P | undefined;
  private prepared: Promise<R> | undefined;
  private readonly budget: RestartBudget;
  private readonly exitedUnexpectedly = new vscode.EventEmitter<UnexpectedExit>();
  readonly onDidExitUnexpectedly = this.exitedUnexpectedly.event;
  private disposed = false;

  constructor(private readonly options: SupervisorOptions<P, R>) {
    this.budget = options.budget ?? new RestartBudget();
  }

  get running(): boolean {
    return this.process?.alive === true;
  }

  get pid(): number | undefined {
    return this.process?.alive ? this.process.pid : undefined;
  }

  /** What `prepare` gave for a started and prepared process (starting one if needed). */
  ready(): Promise<R> {
    if (this.disposed) return Promise.reject(new Error(`the ${this.options.role} is shut down`));
    this.prepared ??= this.start();
    return this.prepared;
  }

  /** Stops the process tree on purpose: no restart follows. */
  async stop(): Promise<void> {
    const current = this.process;
    this.process = undefined;
    this.prepared = undefined;
    if (current) {
      this.options.log.info(`stopping the ${this.options.role} (pid ${current.pid ?? '?'})`);
      await current.kill();
    }
  }

  dispose(): void {
    this.disposed = true;
    void this.stop();
    this.exitedUnexpectedly.dispose();
  }

  private async start(): Promise<R> {
    const { role, log } = this.options;
    const child = this.options.launch();
    this.process = child;
    log.info(`started the ${role}: ${child.commandLine} (pid ${child.pid ?? '?'})`);
    void child.exited.then((exit) => this.onExit(child, exit));
    try {
      // A process that dies while being prepared leaves its requests unanswered: stop waiting then.
      const died = child.exited.then((exit) => {
        throw new Error(`the ${role} exited while starting (${exit.signal ?? `exit code ${exit.code}`}); see the FedKSeed log`);
      });
      return await Promise.race([this.options.prepare(child), died]);
    } catch (err) {
      // A process that cannot be prepared (bad model path, busy port, …) is of no use: stop it, keep the error.
      if (this.process === child) {
        this.process = undefined;
        this.prepared = undefined;
      }
      await child.kill();
      throw err;
    }
  }

  private onExit(child: P, exit: ProcessExit): void {
    if (this.process !== child || this.disposed) return; // stopped on purpose
    this.process = undefined;
    this.prepared = undefined;
    const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
    const restarting = this.budget.tryConsume();
    this.options.log.error(`the ${this.options.role} exited unexpectedly (${how})${restarting ? '; restarting it' : ''}`);
    this.exitedUnexpectedly.fire({ exit, restarting });
    if (restarting) {
      this.ready().catch((err: unknown) => this.options.log.error(`restarting the ${this.options.role} failed: ${String(err)}`));
      return;
    }
    const limit = `${this.budget.limit} times in ${Math.round(this.budget.windowMs / 60_000)} minutes`;
    void vscode.window
      .showErrorMessage(
        `The FedKSeed ${this.options.role} stopped unexpectedly ${limit} and will not be restarted. Check the logs, then run the command again.`,
        'Show Logs',
      )
      .then((choice) => {
        if (choice === 'Show Logs') this.options.log.show();
      });
    this.budget.reset();
  }
}
