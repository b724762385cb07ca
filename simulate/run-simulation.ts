// A whole federation on one machine: a server in this process, N `fedkseed client` child processes on
// non-IID shards of the data, and one evaluator holding the canonical replica that measures held-out
// loss after every committed round. Ends with report.json, report.html and the final checkpoint.
// Each step is a module of its own: prepare.ts (data and shards), client-fleet.ts (the client
// processes), round-evaluations.ts (the round loop as the evaluator follows it), build-report.ts and
// report-files.ts (the report).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startServer, type FederationServer } from '../federation/server';
import { createToken } from '../federation/tokens';
import { openEngine } from '../trainer/engine';
import { GENERATOR_VERSION } from '../trainer/zo/generator';
import { buildReport } from './build-report';
import { fedkseedInvocation } from './cli-invocation';
import { ClientFleet } from './client-fleet';
import { GlobalEvaluator } from './evaluator';
import { simulationConfig, type SimulationListener, type SimulationOptions, type SimulationResult } from './options';
import { prepareData } from './prepare';
import { writeFinalCheckpoint, writeReport } from './report-files';
import { RoundEvaluations } from './round-evaluations';
import { measureSamples, pickSamples, textSamplesReport } from './text-samples';

export type { SimulationEvent, SimulationOptions, SimulationResult } from './options';

export async function runSimulation(options: SimulationOptions, onEvent: SimulationListener = () => {}): Promise<SimulationResult> {
  const started = new Date();
  const o: SimulationOptions = { ...options, outDir: resolve(options.outDir) };
  mkdirSync(o.outDir, { recursive: true });
  const select = o.trainable?.length || o.freeze?.length ? { trainable: o.trainable, freeze: o.freeze } : undefined;
  const engine = await openEngine({
    model: o.model,
    variant: o.variant,
    tokenizer: o.tokenizer,
    select,
    threads: o.threads,
    kernel: o.kernel,
    providers: o.provider?.split(','),
    forwardPrecision: o.forwardPrecision,
    maxMemory: o.maxMemory,
    workload: { batch: o.batchSize, seq: o.seqLen },
  });
  const shardDir = mkdtempSync(join(tmpdir(), 'fedkseed-shards-'));
  const fleet = new ClientFleet();
  let server: FederationServer | null = null;
  try {
    const prepared = await prepareData(o, engine, shardDir, onEvent);
    const config = simulationConfig(o);
    const evaluator = new GlobalEvaluator(engine, prepared.heldOut, config, { batchSize: o.batchSize, seqLen: o.seqLen });
    const evaluations = new RoundEvaluations(evaluator, config, onEvent);
    await evaluations.evaluateBase();
    // The same windows in text, before any round and after the last one the evaluator applied.
    const sampled = pickSamples(prepared.heldOut, engine);
    const baseSamples = await measureSamples(engine, sampled);

    server = await startServer({
      config,
      modelHash: Buffer.from(engine.model.identity, 'hex'),
      generatorVersion: GENERATOR_VERSION,
      paramCount: engine.params.parameterCount,
      storePath: join(o.outDir, 'server'),
      minClients: o.clients,
    });
    onEvent({ type: 'server', url: server.url });
    evaluations.follow(server);

    const store = server.store;
    const tokens = await Promise.all(prepared.ids.map(async (id) => (await createToken(store, id)).token));
    fleet.start(o, server.url, prepared.ids, tokens, shardDir, o.invocation ?? fedkseedInvocation(), onEvent);
    const outcome = await fleet.finish(o.signal, onEvent);
    const evaluationError = await evaluations.settled();
    const failedEvaluation = evaluationError && outcome.status === 'completed';

    const state = await store.loadState();
    const finalSamples = evaluator.syncedRound > 0 && !evaluationError ? await measureSamples(engine, sampled) : null;
    const report = buildReport({
      started,
      options: o,
      config,
      engine,
      prepared,
      fleet,
      outcome: failedEvaluation ? { ...outcome, status: 'failed', error: `evaluation: ${evaluationError.message}` } : outcome,
      rounds: evaluations.withClientDigests(fleet.digests),
      committedRounds: state?.round ?? 0,
      textSamples: sampled.length > 0 ? textSamplesReport(engine, sampled, baseSamples, finalSamples, finalSamples ? evaluator.syncedRound : 0) : null,
      bytes: evaluations.cumulativeBytes,
      fedAvgBytes: evaluations.cumulativeFedAvg,
      checkpoint: writeFinalCheckpoint(o.outDir, engine.model.identity, config, state, {
        seqLen: o.seqLen,
        heldOutFraction: o.heldOut,
        examples: o.evalExamples,
        ...(prepared.include ? { include: [...prepared.include] } : {}),
        data: resolve(o.data),
      }),
    });
    return { report, files: writeReport(o.outDir, report) };
  } finally {
    fleet.kill();
    await server?.close();
    await engine.close();
    rmSync(shardDir, { recursive: true, force: true });
  }
}
