// The real zeroth-order engine behind the federation client. The replica (base model + the server's
// committed coefficients) is the model; a round's local steps are scratch work that is measured,
// reported as (seed, g) pairs and thrown away, so every replica stays bit-identical.
import type { FederationConfig, SparseCoefficientDelta } from '../../protocol';
import { CLIENT_DEFAULTS } from '../../contracts/defaults';
import { BatchSampler } from '../data/batches';
import type { Example } from '../data/examples';
import { deriveSeed } from '../data/rng';
import { followPerturbation, type Engine } from '../engine';
import { evaluateLoss, type LossSummary } from '../eval/loss';
import { GENERATOR_VERSION } from '../zo/generator';
import { SeedSampler } from '../zo/seed-sampler';
import { ZoTrainer } from '../zo/zo-trainer';
import type { LocalTrainer, LossStat, StepProgress, TrainRoundRequest, TrainRoundResult } from '../../federation/client/local-trainer';

export interface EngineTrainerData {
  readonly train: Example[];
  readonly heldOut: Example[];
}

export interface EngineTrainerOptions {
  /** Batch size of evaluations; training uses the federation's batch size from WELCOME. */
  readonly batchSize: number;
  readonly seqLen: number;
  /** Distinguishes this client's batch and seed streams from other clients'. */
  readonly clientSeed: number;
  /** Held-out examples (a fixed prefix) behind the loss before/after a round; default CLIENT_DEFAULTS'. */
  readonly heldOutExamples?: number;
  /**
   * On a device engine, digest() reads the device's replica back (one copy of the weights per round) and
   * fails unless it equals the host's exact replica bit for bit. Default off: the digest is the host's.
   */
  readonly checkDeviceReplica?: boolean;
  /** Work that needs a pause between two local steps (a suggestion decoding beside the round); see LocalTrainingOptions.atRest. */
  readonly atRest?: () => (() => Promise<void>) | undefined;
}

export class EngineLocalTrainer implements LocalTrainer {
  readonly modelHash: Uint8Array;
  readonly generatorVersion = GENERATOR_VERSION;
  private readonly evalSet: readonly Example[];
  private abort = new AbortController();

  constructor(
    private readonly engine: Engine,
    private readonly data: EngineTrainerData,
    private readonly options: EngineTrainerOptions,
  ) {
    if (data.train.length === 0) throw new Error('the client has no training examples');
    this.modelHash = Buffer.from(engine.model.identity, 'hex');
    const n = options.heldOutExamples ?? CLIENT_DEFAULTS.heldOutExamples;
    // Without held-out data the round's loss statistics fall back to a fixed slice of the training
    // data: still comparable before/after, but in-sample.
    this.evalSet = (data.heldOut.length > 0 ? data.heldOut : data.train).slice(0, n);
  }

  /** Whether the loss before/after a round is measured on held-out examples (else on training ones). */
  get lossIsHeldOut(): boolean {
    return this.data.heldOut.length > 0;
  }

  async applyCoefficientDelta(delta: SparseCoefficientDelta, config: FederationConfig): Promise<void> {
    this.followPerturbation(config);
    this.engine.params.applyCoefficientDelta(config.federationSeed, delta.indices, delta.values, config.eta);
  }

  async rebuildReplica(): Promise<void> {
    this.engine.params.rebuildFromBase();
  }

  async digest(): Promise<string> {
    const host = this.engine.params.digest();
    const device = this.engine.device;
    if (device && this.options.checkDeviceReplica) {
      device.resetToBase();
      const onDevice = await device.digest();
      if (onDevice !== host) throw new Error(`the device's replica (${onDevice.slice(0, 16)}…) differs from the exact replica (${host.slice(0, 16)}…)`);
    }
    return host;
  }

  /** The federation decides how z is generated and scaled: the replica is w0 + m ⊙ (−η·2⁻²⁸·S) under both. */
  private followPerturbation(config: FederationConfig): void {
    followPerturbation(this.engine, config);
  }

  /** Held-out loss of the canonical replica (the global model as this client holds it). */
  async heldOutLoss(examples: readonly Example[] = this.evalSet): Promise<LossSummary> {
    this.engine.weights.resetToBase();
    return evaluateLoss(this.engine.session, examples, { batchSize: this.options.batchSize, seqLen: this.options.seqLen, padId: this.engine.tokenizer.padId });
  }

  /** Stops a round in flight after its current step; the replica is restored as usual. */
  stop(): void {
    this.abort.abort();
  }

  async trainRound(request: TrainRoundRequest, onStep?: (progress: StepProgress) => void): Promise<TrainRoundResult> {
    const { config, round, steps } = request;
    // On WebGPU the working weights are the device's; the ParameterSet stays the replica throughout.
    const { weights, session, tokenizer } = this.engine;
    if (this.abort.signal.aborted) this.abort = new AbortController();
    const signal = this.abort.signal;
    this.followPerturbation(config);
    weights.resetToBase();
    try {
      const lossBefore = await this.lossStat();
      const trainer = new ZoTrainer(weights, session, { federationSeed: config.federationSeed, k: config.k, epsilon: config.epsilon, eta: config.eta });
      // Both streams depend only on (clientSeed, round): a retried round repeats exactly. The batch
      // stream continues epoch-wise across rounds, so consecutive rounds see different examples.
      const seeds = new SeedSampler(config.k, deriveSeed(this.options.clientSeed, `seeds/${round}`), request.probabilities ?? undefined);
      const batches = new BatchSampler(
        this.data.train,
        { batchSize: config.batchSize, seqLen: this.options.seqLen, padId: tokenizer.padId, seed: deriveSeed(this.options.clientSeed, 'batches') },
        (round - 1) * steps,
      );
      const result = await trainer.train({
        steps,
        seeds,
        nextBatch: () => batches.next(),
        signal,
        atRest: this.options.atRest,
        onStep: (e) => onStep?.({ round, step: e.step + 1, steps, seed: e.seed, g: e.g, loss: e.skipped ? Number.NaN : (e.lossPlus + e.lossMinus) / 2 }),
      });
      if (signal.aborted) throw new Error(`round ${round} was stopped after ${result.stepsRun} of ${steps} steps`);
      const lossAfter = await this.lossStat();
      // g travels as float32: report exactly what the server will aggregate.
      const pairs = result.pairs.map(({ seed, g }) => ({ seed, g: Math.fround(g) }));
      // The aggregation weight is the client's data size, as in FedKSeed (not the steps it ran).
      return { pairs, examples: this.data.train.length, lossBefore, lossAfter };
    } finally {
      weights.resetToBase();
    }
  }

  /** Token-weighted loss of the working weights on the evaluation set, as a (sum, count) pair. */
  private async lossStat(): Promise<LossStat> {
    const s = await evaluateLoss(this.engine.session, this.evalSet, {
      batchSize: this.options.batchSize,
      seqLen: this.options.seqLen,
      padId: this.engine.tokenizer.padId,
    });
    return s.tokens > 0 ? { sum: s.loss * s.tokens, count: s.tokens } : { sum: 0, count: 0 };
  }
}
