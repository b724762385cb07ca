// One `fedkseed client --json` child process: its event lines, its last words on stderr, its exit.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Invocation } from './cli-invocation';
import { type ClientEvent, parseClientEvent } from '../contracts/cli-events';

export interface ClientExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The last lines the client wrote to stderr: its error message when it failed. */
  readonly stderrTail: string;
}

export class ClientProcess {
  readonly exited: Promise<ClientExit>;
  private readonly child: ChildProcess;
  private readonly tail: string[] = [];
  private exitInfo: ClientExit | null = null;

  constructor(
    readonly id: string,
    invocation: Invocation,
    args: readonly string[],
    env: NodeJS.ProcessEnv,
    onEvent: (e: ClientEvent) => void,
  ) {
    this.child = spawn(invocation.command, [...invocation.args, 'client', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: process.cwd() });
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const e = parseClientEvent(line);
      if (e) onEvent(e);
    });
    createInterface({ input: this.child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      this.tail.push(line);
      if (this.tail.length > 20) this.tail.shift();
    });
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => {
        this.tail.push(`cannot start the client process: ${err.message}`);
      });
      this.child.once('close', (code, signal) => {
        this.exitInfo = { code, signal, stderrTail: this.tail.join('\n') };
        resolve(this.exitInfo);
      });
    });
  }

  get running(): boolean {
    return this.exitInfo === null;
  }

  /** Asks the client to stop (it saves its replica and exits); kills it if it has not after graceMs. */
  async stop(graceMs = 10_000): Promise<ClientExit> {
    if (!this.running) return this.exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}
