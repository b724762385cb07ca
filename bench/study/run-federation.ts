// One federation of the study, in process: the server's aggregation, quantization with error feedback and
// Pro probabilities are the product's own functions, the clients are the product's EngineLocalTrainer on
// one engine (every client of a round starts from the same canonical replica, so they run one after
// another), and every message a client would send or receive in a round is encoded by the real codec to
// count its frame bytes exactly as the server counts them (assignment, upload, ack, result).
import { aggregateContributions, quantizeWithFeedback, type ClientContribution } from '../../federation/aggregate';
import { accumulateImportance, importanceOf } from '../../federation/importance';
import { sampleClients } from '../../federation/sampling';
import {
  DEFAULT_PROBABILITY_BITS,
  factorDelta,
  probabilitiesFromLevels,
  quantizeImportance,
  toSparse,
  wsFrameBytes,
  type FederationConfig,
  type Message,
  type QuantizedProbabilities,
} from '../../protocol';
import { encodeMessage } from '../../protocol/node/codec';
import { EngineLocalTrainer } from '../../trainer/client/engine-trainer';
import type { TrainRoundResult } from '../../federation/client/local-trainer';
import { deriveSeed } from '../../trainer/data/rng';
import { openEngine, type Engine } from '../../trainer/engine';
import { evaluateLoss } from '../../trainer/eval/loss';
import { loadModel } from '../../trainer/model';
import { ParameterSet } from '../../trainer/zo/parameters';
import type { MethodSpec, StudyConfig } from './config';
import { FreshSeedTrainer } from './fresh-seed-trainer';
import type { PreparedTask } from './tasks';
import { errorMessage } from '../../protocol/errors';

/** Unrestricted ZO's seed space: every index the upload codec can carry (24-bit packed indices). */
export const UNRESTRICTED_SEED_SPACE = 1 << 24;

export interface RoundRecord {
  readonly round: number;
  readonly heldOutLoss: number;
  readonly participants: readonly string[];
  /** Frame bytes per participant this round (up + down), in participant order. */
  readonly bytesPerClient: readonly { readonly up: number; readonly down: number }[];
  /** Up + down of every participant in every round so far. */
  readonly cumulativeBytes: number;
  /** Seeds whose coefficient has ever been non-zero (unrestricted: every seed drawn). */
  readonly seedsTouched: number;
  readonly trainSeconds: number;
  readonly evalSeconds: number;
  readonly applySeconds: number;
  readonly digest: string;
  /** Digest compared with a replica rebuilt from scratch out of the server's state: true, false, or null (not checked). */
  readonly verified: boolean | null;
}

export interface RunResult {
  readonly task: string;
  readonly method: string;
  readonly repeat: number;
  readonly federationSeed: number;
  readonly status: 'completed' | 'interrupted' | 'failed';
  /** Why a failed run stopped (its rounds so far are kept). */
  readonly error?: string;
  readonly parameters: number;
  readonly rounds: RoundRecord[];
  /** Pro: the seed probabilities the next round would use (length K); else null. */
  readonly finalProbabilities: number[] | null;
  readonly seconds: number;
}

export interface RunOptions {
  readonly config: StudyConfig;
  readonly signal: AbortSignal;
  readonly log: (line: string) => void;
}

interface Client {
  readonly id: string;
  readonly examples: number;
  readonly train: (round: number, p: Float64Array | null, firstSeed: number) => Promise<TrainRoundResult>;
  /** The last committed round its replica holds (as far as the server has sent it). */
  synced: number;
}

const frameDown = (m: Message): number => wsFrameBytes(encodeMessage(m).length, false);

/** Rebuilds the model from its base file and the server's coefficients alone, and returns its digest. */
async function rebuiltDigest(modelPath: string, config: FederationConfig, coefficients: ReadonlyMap<number, number>): Promise<string> {
  const model = await loadModel(modelPath);
  const params = new ParameterSet(model.weights);
  try {
    params.setShape(config.shape ?? 'isotropic');
    params.applyCoefficientDelta(config.federationSeed, [...coefficients.keys()], [...coefficients.values()], config.eta);
    return params.digest();
  } finally {
    params.dispose();
  }
}

export async function runFederation(task: PreparedTask, method: MethodSpec, repeat: number, o: RunOptions): Promise<RunResult> {
  const started = performance.now();
  const spec = task.spec;
  const unrestricted = method.kind === 'unrestricted';
  const pro = method.kind === 'fedkseed-pro';
  // The same federation seed for every method of a repeat: the same clients are sampled and every
  // client sees the same batches, so methods differ only in their seeds (a paired comparison).
  const federationSeed = deriveSeed(o.config.seed, `${spec.id}/repeat-${repeat}`);
  const k = method.k ?? UNRESTRICTED_SEED_SPACE;
  const config: FederationConfig = {
    k,
    federationSeed,
    epsilon: spec.epsilon,
    eta: spec.eta,
    tau: spec.tau,
    batchSize: spec.batchSize,
    sampling: pro ? 'pro' : 'uniform',
    weighting: 'examples',
    shape: method.shape,
    rounds: spec.rounds,
    clientsPerRound: spec.clientsPerRound,
    deadlineMs: 3_600_000,
  };
  if (unrestricted && spec.rounds * spec.clientsPerRound * spec.tau > UNRESTRICTED_SEED_SPACE)
    throw new Error("too many steps for unrestricted ZO's 24-bit seed indices");

  const engine: Engine = await openEngine({ model: task.modelPath, tokenizer: task.tokenizerPath, threads: o.config.threads });
  const rounds: RoundRecord[] = [];
  let status: RunResult['status'] = 'completed';
  const stops: (() => void)[] = [];
  const onAbort = () => stops.forEach((stop) => stop());
  o.signal.addEventListener('abort', onAbort);
  try {
    const trainerOptions = (i: number) => ({ batchSize: spec.batchSize, seqLen: spec.seqLen, clientSeed: deriveSeed(federationSeed, `client/${i}`) });
    const clients: Client[] = task.shards.map((shard, i) => {
      const id = `client-${String(i).padStart(2, '0')}`;
      if (unrestricted) {
        const t = new FreshSeedTrainer(engine, shard, trainerOptions(i));
        return { id, examples: shard.length, synced: 0, train: (round, _p, first) => t.trainRound(round, spec.tau, config, first, o.signal) };
      }
      const t = new EngineLocalTrainer(engine, { train: shard, heldOut: [] }, trainerOptions(i));
      stops.push(() => t.stop());
      return { id, examples: shard.length, synced: 0, train: (round, p) => t.trainRound({ round, steps: spec.tau, probabilities: p, config }) };
    });
    const byId = new Map(clients.map((c) => [c.id, c]));

    // Server state. FedKSeed: C, the quantization residual, Pro's importance sums, each round's ΔC.
    // Unrestricted: C as a sparse map over every seed ever drawn, and each round's upload frame sizes,
    // which a client must download for every round it missed to replay the other clients' steps.
    const coefficients = new Map<number, number>();
    let residual: Float64Array = new Float64Array(unrestricted ? 0 : k);
    const importanceSum = new Float64Array(unrestricted ? 0 : k);
    const importanceCount = new Float64Array(unrestricted ? 0 : k);
    const changes: Float64Array[] = [new Float64Array(0)];
    const relayed: number[][] = [[]];
    let cumulativeBytes = 0;

    const evaluate = async () => {
      const t0 = performance.now();
      engine.params.resetToBase();
      const s = await evaluateLoss(engine.session, task.heldOut, { batchSize: spec.batchSize, seqLen: spec.seqLen, padId: engine.tokenizer.padId });
      return { loss: s.loss, seconds: (performance.now() - t0) / 1000 };
    };
    const base = await evaluate();
    rounds.push({
      round: 0,
      heldOutLoss: base.loss,
      participants: [],
      bytesPerClient: [],
      cumulativeBytes: 0,
      seedsTouched: 0,
      trainSeconds: 0,
      evalSeconds: base.seconds,
      applySeconds: 0,
      digest: engine.params.digest(),
      verified: null,
    });

    let error: string | undefined;
    // A diverging run (e.g. g so large that the exact coefficient path refuses the update) ends the
    // run as failed, with its rounds so far, instead of ending the study.
    try {
      for (let r = 1; r <= spec.rounds; r++) {
        if (o.signal.aborted) {
          status = 'interrupted';
          break;
        }
        const chosen = sampleClients(
          clients.map((c) => c.id),
          spec.clientsPerRound,
          federationSeed,
          r,
          0,
        );
        const levels: QuantizedProbabilities | null = pro ? quantizeImportance(importanceOf(importanceSum, importanceCount), DEFAULT_PROBABILITY_BITS) : null;
        const p = levels ? probabilitiesFromLevels(levels) : null;
        const digest = engine.params.digest();
        const roundSeedBase = (r - 1) * spec.clientsPerRound * spec.tau;
        const contributions: ClientContribution[] = [];
        const bytes: { up: number; down: number }[] = [];
        const uploadSizes: number[] = [];
        let trainSeconds = 0;
        for (const [slot, id] of chosen.entries()) {
          const c = byId.get(id) as Client;
          let down: number;
          if (unrestricted) {
            down = frameDown({ type: 'round', round: r, baseRound: c.synced, delta: factorDelta(new Float64Array(0)), probabilities: null, steps: spec.tau });
            for (let past = c.synced + 1; past < r; past++) for (const size of relayed[past]) down += wsFrameBytes(size, false);
          } else {
            const since = new Float64Array(k);
            for (let past = c.synced + 1; past < r; past++) changes[past].forEach((v, j) => (since[j] += v));
            down = frameDown({ type: 'round', round: r, baseRound: c.synced, delta: factorDelta(since), probabilities: levels, steps: spec.tau });
          }
          c.synced = r - 1;
          const t0 = performance.now();
          const result = await c.train(r, p, roundSeedBase + slot * spec.tau);
          trainSeconds += (performance.now() - t0) / 1000;
          if (o.signal.aborted) break;
          const upload = encodeMessage({
            type: 'upload',
            round: r,
            examples: result.examples,
            lossBeforeSum: result.lossBefore.sum,
            lossBeforeCount: result.lossBefore.count,
            lossAfterSum: result.lossAfter.sum,
            lossAfterCount: result.lossAfter.count,
            digestRound: r - 1,
            digest: Buffer.from(digest, 'hex'),
            pairs: result.pairs,
          });
          uploadSizes.push(upload.length);
          down += frameDown({ type: 'ack', round: r, status: 'accepted', digest: 'match' });
          bytes.push({ up: wsFrameBytes(upload.length, true), down });
          contributions.push({ examples: result.examples, pairs: result.pairs });
          o.log(`  round ${r}/${spec.rounds} ${id}: ${result.pairs.length} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        }
        if (o.signal.aborted) {
          status = 'interrupted';
          break;
        }
        const result = frameDown({
          type: 'result',
          round: r,
          participants: contributions.length,
          examples: contributions.reduce((s, c) => s + c.examples, 0),
          lossBefore: 0,
          lossAfter: 0,
        });
        for (const b of bytes) b.down += result;
        cumulativeBytes += bytes.reduce((s, b) => s + b.up + b.down, 0);

        const t0 = performance.now();
        let seeds: number[];
        let values: number[];
        if (unrestricted) {
          // The round's fresh seeds as a dense block: the same aggregation and integer grid as FedKSeed.
          // Its residual is dropped: a seed is never drawn again, so there is nothing to carry it to.
          const width = spec.clientsPerRound * spec.tau;
          const local = contributions.map((c) => ({ examples: c.examples, pairs: c.pairs.map((q) => ({ seed: q.seed - roundSeedBase, g: q.g })) }));
          const q = quantizeWithFeedback(aggregateContributions(local, width, config.weighting), new Float64Array(width));
          const sparse = toSparse(factorDelta(q.change));
          seeds = [...sparse.indices].map((j) => j + roundSeedBase);
          values = [...sparse.values];
          relayed.push(uploadSizes);
        } else {
          const q = quantizeWithFeedback(aggregateContributions(contributions, k, config.weighting), residual);
          residual = q.residual;
          if (pro) for (const c of contributions) accumulateImportance(importanceSum, importanceCount, c.pairs);
          changes.push(q.change);
          const sparse = toSparse(factorDelta(q.change));
          seeds = [...sparse.indices];
          values = [...sparse.values];
        }
        seeds.forEach((j, n) => coefficients.set(j, (coefficients.get(j) ?? 0) + values[n]));
        engine.params.setShape(method.shape);
        engine.params.applyCoefficientDelta(federationSeed, seeds, values, config.eta);
        const applySeconds = (performance.now() - t0) / 1000;

        const ev = await evaluate();
        const replica = engine.params.digest();
        let verified: boolean | null = null;
        if (o.config.verify === 'every-round' || r === spec.rounds) {
          const live = new Map([...coefficients].filter(([, v]) => v !== 0));
          verified = (await rebuiltDigest(task.modelPath, config, live)) === replica;
          if (!verified)
            throw new Error(`${method.id}, repeat ${repeat}, round ${r}: the replica's digest differs from a rebuild out of the server's coefficients`);
        }
        const touched = [...coefficients.values()].filter((v) => v !== 0).length;
        rounds.push({
          round: r,
          heldOutLoss: ev.loss,
          participants: chosen,
          bytesPerClient: bytes,
          cumulativeBytes,
          seedsTouched: touched,
          trainSeconds,
          evalSeconds: ev.seconds,
          applySeconds,
          digest: replica,
          verified,
        });
        const perClient = bytes.reduce((s, b) => s + b.up + b.down, 0) / Math.max(1, bytes.length);
        o.log(
          `${spec.id} ${method.id} #${repeat} round ${r}/${spec.rounds}: held-out ${ev.loss.toFixed(4)}, ${Math.round(perClient)} B/client, train ${trainSeconds.toFixed(1)} s${verified === null ? '' : verified ? ', replica verified' : ''}`,
        );
      }
    } catch (err) {
      status = 'failed';
      error = errorMessage(err);
      o.log(`${spec.id} ${method.id} #${repeat} FAILED after ${rounds.length - 1} rounds: ${error}`);
    }

    const finalProbabilities = pro
      ? Array.from(probabilitiesFromLevels(quantizeImportance(importanceOf(importanceSum, importanceCount), DEFAULT_PROBABILITY_BITS)))
      : null;
    return {
      task: spec.id,
      method: method.id,
      repeat,
      federationSeed,
      status,
      ...(error !== undefined ? { error } : {}),
      parameters: engine.params.parameterCount,
      rounds,
      finalProbabilities,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    o.signal.removeEventListener('abort', onAbort);
    await engine.close();
  }
}
