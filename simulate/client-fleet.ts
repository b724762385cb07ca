// The simulation's clients: one `fedkseed client --json` process per shard, each with its own token,
// what they report (their replica digest per synced round, their final digest and bytes), and the wait
// until every one has exited. A client that fails, or the abort signal, stops the rest.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientBytes } from '../protocol';
import type { Invocation } from './cli-invocation';
import { type ClientExit, ClientProcess } from './client-process';
import type { SimulationListener, SimulationOptions } from './options';
import { shardFile } from './prepare';
import type { SimulationReport } from './report';

export interface FleetOutcome {
  readonly status: SimulationReport['status'];
  readonly error: string | null;
  readonly exits: ReadonlyMap<string, ClientExit>;
}

/** The last lines of a client's stderr, on one line. */
export function lastWords(exit: ClientExit): string {
  return exit.stderrTail.split('\n').filter(Boolean).slice(-3).join(' / ');
}

export class ClientFleet {
  private readonly processes: ClientProcess[] = [];
  /** Digests the clients reported, by round and client. */
  readonly digests = new Map<number, Map<string, string>>();
  /** What each client reported when the federation finished. */
  readonly finals = new Map<string, { readonly digest: string; readonly bytes: ClientBytes }>();

  /** Starts one client per id against `url`, each authenticated by its token. */
  start(
    o: SimulationOptions,
    url: string,
    ids: readonly string[],
    tokens: readonly string[],
    shardDir: string,
    invocation: Invocation,
    onEvent: SimulationListener,
  ): void {
    const modelArgs = [
      ...(o.model ? ['--model', o.model] : []),
      ...(o.variant ? ['--variant', o.variant] : []),
      ...(o.tokenizer ? ['--tokenizer', o.tokenizer] : []),
      ...(o.trainable?.length ? ['--trainable', ...o.trainable] : []),
      ...(o.freeze?.length ? ['--freeze', ...o.freeze] : []),
      ...(o.kernel ? ['--kernel', o.kernel] : []),
      ...(o.provider ? ['--provider', o.provider] : []),
      ...(o.forwardPrecision ? ['--forward-precision', o.forwardPrecision] : []),
      ...(o.maxMemory !== undefined ? ['--max-memory', String(o.maxMemory)] : []),
    ];
    mkdirSync(join(o.outDir, 'clients'), { recursive: true });
    for (const [i, id] of ids.entries()) {
      if (o.signal?.aborted) break;
      const args = [
        '--server',
        url,
        '--id',
        id,
        '--data',
        shardFile(shardDir, id),
        '--format',
        'pretokenized',
        '--seq-len',
        String(o.seqLen),
        '--batch-size',
        String(o.batchSize),
        '--held-out',
        '0',
        '--held-out-examples',
        String(Math.max(o.batchSize, 8)),
        '--threads',
        String(o.threads),
        '--out',
        join(o.outDir, 'clients', `${id}.checkpoint.json`),
        '--max-attempts',
        '5',
        '--json',
        ...modelArgs,
      ];
      this.processes.push(
        new ClientProcess(id, invocation, args, { ...process.env, FEDKSEED_TOKEN: tokens[i] }, (event) => {
          if (event.event === 'synced') {
            const m = this.digests.get(event.round) ?? new Map<string, string>();
            m.set(id, event.digest);
            this.digests.set(event.round, m);
          } else if (event.event === 'done') this.finals.set(id, { digest: event.digest, bytes: event.bytes });
          onEvent({ type: 'client', id, event });
        }),
      );
    }
  }

  /** Resolves when every client has exited: completed, interrupted by the signal, or failed with the first failure. */
  finish(signal: AbortSignal | undefined, onEvent: SimulationListener): Promise<FleetOutcome> {
    const processes = this.processes;
    let status: SimulationReport['status'] = 'completed';
    let error: string | null = null;
    const exits = new Map<string, ClientExit>();
    return new Promise((resolve) => {
      let stopping = false;
      const stopAll = () => {
        if (stopping) return;
        stopping = true;
        void Promise.all(processes.map((p) => p.stop()));
      };
      const onAbort = () => {
        if (status === 'completed') status = 'interrupted';
        stopAll();
      };
      const done = () => resolve({ status, error, exits });
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) onAbort();
      if (processes.length === 0) done();
      for (const p of processes) {
        void p.exited.then((exit) => {
          exits.set(p.id, exit);
          onEvent({ type: 'client-exit', id: p.id, exit });
          if (exit.code !== 0 && !stopping && status === 'completed') {
            status = 'failed';
            error = `${p.id} exited with ${exit.code ?? exit.signal}: ${lastWords(exit) || 'no message'}`;
            stopAll();
          }
          if (exits.size === processes.length) {
            signal?.removeEventListener('abort', onAbort);
            done();
          }
        });
      }
    });
  }

  kill(): void {
    for (const p of this.processes) p.kill();
  }
}
