// Unrestricted ZO (FedZO / MeZO style): every local step draws a seed never used before, so the seed space
// is unbounded. Otherwise the same round as EngineLocalTrainer's: same replica reset, same batch stream,
// same loss statistics, same ZoTrainer, so that only the seeds differ between the study's methods.
import type { FederationConfig } from '../../protocol';
import type { TrainRoundResult, LossStat } from '../../federation/client/local-trainer';
import { BatchSampler } from '../../trainer/data/batches';
import type { Example } from '../../trainer/data/examples';
import { deriveSeed } from '../../trainer/data/rng';
import type { Engine } from '../../trainer/engine';
import { evaluateLoss } from '../../trainer/eval/loss';
import { SeedSampler } from '../../trainer/zo/seed-sampler';
import { ZoTrainer } from '../../trainer/zo/zo-trainer';

/** Seed indices first, first + 1, …: fresh for every step when blocks never overlap. */
class FreshSeeds extends SeedSampler {
  private nextSeed: number;

  constructor(first: number) {
    super(1, 0);
    this.nextSeed = first;
  }

  override next(): number {
    return this.nextSeed++;
  }
}

export interface FreshSeedTrainerOptions {
  readonly batchSize: number;
  readonly seqLen: number;
  readonly clientSeed: number;
  readonly lossExamples?: number;
}

export class FreshSeedTrainer {
  private readonly lossSet: readonly Example[];

  constructor(
    private readonly engine: Engine,
    private readonly train: readonly Example[],
    private readonly options: FreshSeedTrainerOptions,
  ) {
    if (train.length === 0) throw new Error('the client has no training examples');
    this.lossSet = train.slice(0, options.lossExamples ?? 16);
  }

  /** τ steps with seeds firstSeed … firstSeed + τ − 1; the replica is restored afterwards. */
  async trainRound(round: number, steps: number, config: FederationConfig, firstSeed: number, signal?: AbortSignal): Promise<TrainRoundResult> {
    const { params, session, tokenizer } = this.engine;
    params.resetToBase();
    try {
      const lossBefore = await this.lossStat();
      const trainer = new ZoTrainer(params, session, { federationSeed: config.federationSeed, k: config.k, epsilon: config.epsilon, eta: config.eta });
      const batches = new BatchSampler(
        this.train,
        { batchSize: config.batchSize, seqLen: this.options.seqLen, padId: tokenizer.padId, seed: deriveSeed(this.options.clientSeed, 'batches') },
        (round - 1) * steps,
      );
      const result = await trainer.train({ steps, seeds: new FreshSeeds(firstSeed), nextBatch: () => batches.next(), signal });
      if (signal?.aborted) throw new Error(`round ${round} was stopped after ${result.stepsRun} of ${steps} steps`);
      const lossAfter = await this.lossStat();
      return { pairs: result.pairs.map(({ seed, g }) => ({ seed, g: Math.fround(g) })), examples: this.train.length, lossBefore, lossAfter };
    } finally {
      params.resetToBase();
    }
  }

  private async lossStat(): Promise<LossStat> {
    const s = await evaluateLoss(this.engine.session, this.lossSet, {
      batchSize: this.options.batchSize,
      seqLen: this.options.seqLen,
      padId: this.engine.tokenizer.padId,
    });
    return s.tokens > 0 ? { sum: s.loss * s.tokens, count: s.tokens } : { sum: 0, count: 0 };
  }
}
