// Keeps one trainer child process alive while it is wanted: starts it on first use, prepares each new
// process (notification handlers, initialize), restarts it after an unexpected exit within a restart
// budget, and when the budget is spent stops trying and tells the user, with the logs one click away.
import * as vscode from 'vscode';
import type { MessageConnection } from 'vscode-jsonrpc/node';
import { RestartBudget } from './restartBudget';
import { TrainerProcess, type ProcessExit } from './trainerProcess';

export interface SupervisorOptions {
  /** Names the process in logs and messages ("trainer", "federation server"). */
  readonly role: string;
  readonly script: string;
  readonly log: vscode.LogOutputChannel;
  /** Called with each new process before it is used: register handlers, send initialize, … */
  readonly prepare: (connection: MessageConnection) => Promise<void>;
  readonly budget?: RestartBudget;
}

export interface UnexpectedExit {
  readonly exit: ProcessExit;
  readonly restarting: boolean;
}

export class TrainerSupervisor implements vscode.Disposable {
  private process: TrainerProcess | undefined;
  private ready: Promise<MessageConnection> | undefined;
  private readonly budget: RestartBudget;
  private readonly exitedUnexpectedly = new vscode.EventEmitter<UnexpectedExit>();
  readonly onDidExitUnexpectedly = this.exitedUnexpectedly.event;
  private disposed = false;

  constructor(private readonly options: SupervisorOptions) {
    this.budget = options.budget ?? new RestartBudget();
  }

  get running(): boolean {
    return this.process?.alive === true;
  }

  get pid(): number | undefined {
    return this.process?.alive ? this.process.pid : undefined;
  }

  /** The connection of a started and prepared process (starting one if needed). */
  connection(): Promise<MessageConnection> {
    if (this.disposed) return Promise.reject(new Error(`the ${this.options.role} is shut down`));
    this.ready ??= this.start();
    return this.ready;
  }

  /** Stops the process tree on purpose: no restart follows. */
  async stop(): Promise<void> {
    const current = this.process;
    this.process = undefined;
    this.ready = undefined;
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

  private async start(): Promise<MessageConnection> {
    const { role, script, log } = this.options;
    const child = TrainerProcess.start(script, (line) => log.info(`[${role}] ${line}`));
    this.process = child;
    log.info(`started the ${role}: ${process.execPath} ${script} (pid ${child.pid ?? '?'})`);
    void child.exited.then((exit) => this.onExit(child, exit));
    try {
      // A process that dies while being prepared leaves its requests unanswered: stop waiting then.
      const died = child.exited.then((exit) => {
        throw new Error(`the ${role} exited while starting (${exit.signal ?? `exit code ${exit.code}`}); see the FedKSeed log`);
      });
      await Promise.race([this.options.prepare(child.connection), died]);
      return child.connection;
    } catch (err) {
      // A process that cannot be prepared (bad model path, …) is of no use: stop it, keep the error.
      if (this.process === child) {
        this.process = undefined;
        this.ready = undefined;
      }
      await child.kill();
      throw err;
    }
  }

  private onExit(child: TrainerProcess, exit: ProcessExit): void {
    if (this.process !== child || this.disposed) return; // stopped on purpose
    this.process = undefined;
    this.ready = undefined;
    const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
    const restarting = this.budget.tryConsume();
    this.options.log.error(`the ${this.options.role} exited unexpectedly (${how})${restarting ? '; restarting it' : ''}`);
    this.exitedUnexpectedly.fire({ exit, restarting });
    if (restarting) {
      this.connection().catch((err: unknown) => this.options.log.error(`restarting the ${this.options.role} failed: ${String(err)}`));
      return;
    }
    const limit = `${this.budget.limit} times in ${Math.round(this.budget.windowMs / 60_000)} minutes`;
    void vscode.window
      .showErrorMessage(`The FedKSeed ${this.options.role} stopped unexpectedly ${limit} and will not be restarted. Check the logs, then run the command again.`, 'Show Logs')
      .then((choice) => {
        if (choice === 'Show Logs') this.options.log.show();
      });
    this.budget.reset();
  }
}
