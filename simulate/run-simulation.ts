// A whole federation on one machine: a server in this process, N `fedkseed client` child processes on
// non-IID shards of the data, and one evaluator holding the canonical replica that measures held-out
// loss after every committed round. Ends with report.json, report.html and the final checkpoint.
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ClientBytes, FederationConfig } from '../protocol';
import { loadDataset } from '../trainer/data/dataset';
import type { DataProblem } from '../trainer/data/problems';
import { type DataFormat, detectFormat } from '../trainer/data/readers';
import { openEngine } from '../trainer/engine';
import { makeCheckpoint, saveCheckpoint } from '../trainer/zo/checkpoint';
import type { KernelChoice } from '../trainer/zo/kernels-select';
import { GENERATOR_VERSION } from '../trainer/zo/generator';
import { startServer } from '../federation/server';
import { createToken } from '../federation/tokens';
import { fedkseedInvocation, type Invocation } from './cli-invocation';
import type { ClientEvent } from '../contracts/cli-events';
import { type ClientExit, ClientProcess } from './client-process';
import { type Evaluation, GlobalEvaluator } from './evaluator';
import { type ClientReport, type RoundReport, type SimulationReport, writeReport } from './report';
import { CODE_GLOBS, groupsOf, planShards, type ShardPlan, type SplitMode, writeShard } from './shards';

export interface SimulationOptions {
  readonly data: string;
  readonly format?: DataFormat;
  readonly include?: string[];
  readonly model?: string;
  readonly tokenizer?: string;
  readonly kernel?: KernelChoice;
  readonly provider?: string;
  readonly clients: number;
  /** Default: every client, every round. */
  readonly clientsPerRound?: number;
  readonly rounds: number;
  readonly tau: number;
  readonly k: number;
  readonly federationSeed: number;
  readonly eps: number;
  readonly eta: number;
  readonly batchSize: number;
  readonly seqLen: number;
  readonly sampling: FederationConfig['sampling'];
  readonly weighting: FederationConfig['weighting'];
  readonly split: SplitMode;
  readonly alpha: number;
  readonly groupsPerClient?: number;
  /** Share of the data (by file / example) held out from every client for the global evaluation. */
  readonly heldOut: number;
  readonly evalExamples: number;
  readonly deadlineMs: number;
  readonly outDir: string;
  /** onnxruntime threads of each client process and of the evaluator. */
  readonly threads: number;
  readonly invocation?: Invocation;
  readonly signal?: AbortSignal;
}

export type SimulationEvent =
  | { readonly type: 'data-problem'; readonly problem: DataProblem }
  | {
      readonly type: 'prepared';
      readonly parameters: number;
      readonly train: number;
      readonly heldOut: number;
      readonly evalExamples: number;
      readonly split: 'group' | 'dirichlet';
      readonly note?: string;
      readonly clients: readonly { readonly id: string; readonly examples: number; readonly groups: readonly string[] }[];
      readonly unassigned: ShardPlan['unassigned'];
    }
  | { readonly type: 'server'; readonly url: string }
  | { readonly type: 'round'; readonly report: RoundReport; readonly rounds: number }
  | { readonly type: 'client'; readonly id: string; readonly event: ClientEvent }
  | { readonly type: 'client-exit'; readonly id: string; readonly exit: ClientExit };

export interface SimulationResult {
  readonly report: SimulationReport;
  readonly files: { readonly json: string; readonly html: string };
}

const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);

export async function runSimulation(o: SimulationOptions, onEvent: (e: SimulationEvent) => void = () => {}): Promise<SimulationResult> {
  const started = new Date();
  const outDir = resolve(o.outDir);
  mkdirSync(outDir, { recursive: true });
  const engine = await openEngine({ model: o.model, tokenizer: o.tokenizer, threads: o.threads, kernel: o.kernel, providers: o.provider?.split(',') });
  const shardDir = mkdtempSync(join(tmpdir(), 'fedkseed-shards-'));
  const processes: ClientProcess[] = [];
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  try {
    const format = o.format ?? (await detectFormat(o.data));
    const load = (include: string[] | undefined) =>
      loadDataset(o.data, {
        tokenizer: engine.tokenizer,
        seqLen: o.seqLen,
        format: o.format,
        include,
        heldOutFraction: o.heldOut,
        onProblem: (problem) => onEvent({ type: 'data-problem', problem }),
      });
    // A folder of text is read as code by default; a folder without code falls back to every text file.
    const codeOnly = format === 'text' && o.include === undefined && statSync(o.data).isDirectory();
    let data = await load(codeOnly ? [...CODE_GLOBS] : o.include);
    if (codeOnly && data.train.length === 0) data = await load(undefined);
    if (data.train.length === 0) throw new Error(`no training examples in ${o.data} (pass --data with code, text or instruction data)`);
    const heldOut = data.heldOut.slice(0, o.evalExamples);
    if (heldOut.length === 0) throw new Error(`no held-out examples in ${o.data}: raise --held-out or add data`);
    const plan = planShards(data.train, {
      clients: o.clients,
      mode: o.split,
      alpha: o.alpha,
      groupsPerClient: o.groupsPerClient,
      minPerClient: o.batchSize,
      labelled: format === 'dolly' || format === 'alpaca',
      seed: o.federationSeed,
    });
    const ids = plan.shards.map((_, i) => `client-${i + 1}`);
    onEvent({
      type: 'prepared',
      parameters: engine.params.parameterCount,
      train: data.train.length,
      heldOut: data.heldOut.length,
      evalExamples: heldOut.length,
      split: plan.mode,
      note: plan.note,
      clients: plan.shards.map((s, i) => ({ id: ids[i], examples: s.length, groups: groupsOf(s) })),
      unassigned: plan.unassigned,
    });
    for (const [i, shard] of plan.shards.entries()) await writeShard(join(shardDir, `${ids[i]}.jsonl`), shard);

    const config: FederationConfig = {
      k: o.k,
      federationSeed: o.federationSeed,
      epsilon: o.eps,
      eta: o.eta,
      tau: o.tau,
      batchSize: o.batchSize,
      sampling: o.sampling,
      weighting: o.weighting,
      rounds: o.rounds,
      clientsPerRound: Math.min(o.clientsPerRound ?? o.clients, o.clients),
      deadlineMs: o.deadlineMs,
    };
    const evaluator = new GlobalEvaluator(engine, heldOut, config, { batchSize: o.batchSize, seqLen: o.seqLen });
    const rounds: RoundReport[] = [];
    const clientDigests = new Map<number, Map<string, string>>();
    const roundStart = new Map<number, number>();
    let cumulativeBytes = 0;
    let cumulativeFedAvg = 0;

    const record = (e: Evaluation, extra: Partial<RoundReport>): RoundReport => {
      const report: RoundReport = {
        round: e.round,
        heldOutLoss: finite(e.heldOut.loss),
        perplexity: finite(e.heldOut.perplexity),
        heldOutTokens: e.heldOut.tokens,
        digest: e.digest,
        clientDigests: {},
        digestsAgree: null,
        participants: [],
        examples: 0,
        clientLossBefore: null,
        clientLossAfter: null,
        bytes: { up: 0, down: 0, perClient: {}, fedAvg: 0 },
        cumulativeBytes,
        cumulativeFedAvgBytes: cumulativeFedAvg,
        seconds: 0,
        evalMs: e.ms,
        ...extra,
      };
      rounds.push(report);
      onEvent({ type: 'round', report, rounds: config.rounds });
      return report;
    };
    record(await evaluator.evaluate(), {});

    server = await startServer({
      config,
      modelHash: Buffer.from(engine.model.identity, 'hex'),
      generatorVersion: GENERATOR_VERSION,
      paramCount: engine.params.parameterCount,
      storePath: join(outDir, 'server'),
      minClients: o.clients,
    });
    onEvent({ type: 'server', url: server.url });
    const store = server.store;
    server.events.on('roundStarted', (e) => {
      if (!roundStart.has(e.round)) roundStart.set(e.round, performance.now());
    });
    // Evaluations run one after another in commit order, while the clients train the next round.
    let evaluations: Promise<void> = Promise.resolve();
    let evaluationError: Error | null = null;
    server.events.on('roundCommitted', (c) => {
      const committedAt = performance.now();
      evaluations = evaluations.then(async () => {
        if (evaluationError) return;
        try {
          const change = (await store.loadRound(c.round))?.change;
          if (!change) throw new Error(`round ${c.round} is missing from the store`);
          evaluator.advance(c.round, change);
          cumulativeBytes += c.bytes.up + c.bytes.down;
          cumulativeFedAvg += c.bytes.fedAvg;
          record(await evaluator.evaluate(), {
            participants: c.participants,
            examples: c.examples,
            clientLossBefore: finite(c.lossBefore),
            clientLossAfter: finite(c.lossAfter),
            bytes: c.bytes,
            seconds: (committedAt - (roundStart.get(c.round) ?? committedAt)) / 1000,
          });
        } catch (err) {
          evaluationError = err as Error;
        }
      });
    });

    const tokens = await Promise.all(ids.map((id) => createToken(store, id)));
    const invocation = o.invocation ?? fedkseedInvocation();
    const finals = new Map<string, { digest: string; bytes: ClientBytes }>();
    const modelArgs = [...(o.model ? ['--model', o.model] : []), ...(o.tokenizer ? ['--tokenizer', o.tokenizer] : []), ...(o.kernel ? ['--kernel', o.kernel] : []), ...(o.provider ? ['--provider', o.provider] : [])];
    mkdirSync(join(outDir, 'clients'), { recursive: true });
    for (const [i, id] of ids.entries()) {
      if (o.signal?.aborted) break;
      const args = [
        '--server', server.url, '--id', id, '--data', join(shardDir, `${id}.jsonl`), '--format', 'pretokenized',
        '--seq-len', String(o.seqLen), '--batch-size', String(o.batchSize), '--held-out', '0', '--held-out-examples', String(Math.max(o.batchSize, 8)),
        '--threads', String(o.threads), '--out', join(outDir, 'clients', `${id}.checkpoint.json`), '--max-attempts', '5', '--json', ...modelArgs,
      ];
      processes.push(
        new ClientProcess(id, invocation, args, { ...process.env, FEDKSEED_TOKEN: tokens[i].token }, (event) => {
          if (event.event === 'synced') {
            const m = clientDigests.get(event.round) ?? new Map<string, string>();
            m.set(id, event.digest);
            clientDigests.set(event.round, m);
          } else if (event.event === 'done') finals.set(id, { digest: event.digest, bytes: event.bytes });
          onEvent({ type: 'client', id, event });
        }),
      );
    }

    // Done when every client has exited; a client that fails, or the signal, stops the rest.
    let status: SimulationReport['status'] = 'completed';
    let error: string | null = null;
    const exits = new Map<string, ClientExit>();
    await new Promise<void>((resolveAll) => {
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
      o.signal?.addEventListener('abort', onAbort, { once: true });
      if (o.signal?.aborted) onAbort();
      if (processes.length === 0) resolveAll();
      for (const p of processes) {
        void p.exited.then((exit) => {
          exits.set(p.id, exit);
          onEvent({ type: 'client-exit', id: p.id, exit });
          if (exit.code !== 0 && !stopping && status === 'completed') {
            status = 'failed';
            error = `${p.id} exited with ${exit.code ?? exit.signal}: ${exit.stderrTail.split('\n').filter(Boolean).slice(-3).join(' / ') || 'no message'}`;
            stopAll();
          }
          if (exits.size === processes.length) {
            o.signal?.removeEventListener('abort', onAbort);
            resolveAll();
          }
        });
      }
    });
    await evaluations;
    if (evaluationError && status === 'completed') {
      status = 'failed';
      error = `evaluation: ${(evaluationError as Error).message}`;
    }

    // The final global model as a checkpoint: base identity + the committed integer coefficients.
    const state = await store.loadState();
    let checkpoint: string | null = null;
    if (state && state.round > 0) {
      checkpoint = join(outDir, 'checkpoint.json');
      const c = makeCheckpoint(
        { baseModel: engine.model.identity, federationSeed: config.federationSeed, k: config.k, eta: config.eta, eps: config.epsilon },
        state.coefficients,
        { round: state.round },
      );
      saveCheckpoint(checkpoint, c);
    }

    const withDigests = rounds.map((r): RoundReport => {
      const reported = Object.fromEntries(clientDigests.get(r.round) ?? []);
      const values = Object.values(reported);
      return { ...r, clientDigests: reported, digestsAgree: values.length === 0 ? null : values.every((d) => d === r.digest) };
    });
    const agreements = withDigests.map((r) => r.digestsAgree).filter((a): a is boolean => a !== null);
    const clients: ClientReport[] = ids.map((id, i) => {
      const exit = exits.get(id);
      const fin = finals.get(id);
      const failed = exit && exit.code !== 0 && exit.code !== 130;
      return {
        id,
        examples: plan.shards[i].length,
        groups: groupsOf(plan.shards[i]),
        exitCode: exit?.code ?? null,
        finalDigest: fin?.digest ?? null,
        bytes: fin?.bytes ?? null,
        error: failed ? exit.stderrTail.split('\n').filter(Boolean).slice(-3).join(' / ') : null,
      };
    });
    const finished = new Date();
    const report: SimulationReport = {
      format: 'fedkseed-simulation',
      version: 1,
      status,
      error,
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      seconds: (finished.getTime() - started.getTime()) / 1000,
      config: {
        federation: config,
        clients: o.clients,
        split: plan.mode,
        alpha: plan.mode === 'dirichlet' ? o.alpha : null,
        seqLen: o.seqLen,
        evalBatchSize: o.batchSize,
        heldOutFraction: o.heldOut,
        model: { path: engine.modelPath, identity: engine.model.identity, parameters: engine.params.parameterCount },
        data: { path: resolve(o.data), train: data.train.length, heldOut: data.heldOut.length, evalExamples: heldOut.length, groups: new Set(data.train.map((e) => e.group)).size, unassigned: plan.unassigned },
      },
      clients,
      rounds: withDigests,
      totals: {
        committedRounds: state?.round ?? 0,
        bytes: cumulativeBytes,
        fedAvgBytes: cumulativeFedAvg,
        replicasIdentical: agreements.length === 0 ? null : agreements.every(Boolean),
      },
      checkpoint,
    };
    return { report, files: writeReport(outDir, report) };
  } finally {
    for (const p of processes) p.kill();
    await server?.close();
    await engine.close();
    rmSync(shardDir, { recursive: true, force: true });
  }
}
