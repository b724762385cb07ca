// The zeroth-order step (docs/zo-engine.md) and local training over τ steps.
// Per step: w += εz → L₊; w −= 2εz → L₋; g = (L₊ − L₋)/2ε; w += (ε − ηg)z. The last pass is deferred
// and fused with the next step's +εz, so a step costs two passes over the weights, not three.
import type { SeedGradient } from '../../protocol';
import type { TokenBatch } from '../data/batches';
import { seedKey } from './generator';
import type { SeedSampler } from './seed-sampler';

export interface ZoConfig {
  readonly federationSeed: number;
  readonly k: number;
  /** Perturbation scale ε. */
  readonly epsilon: number;
  /** Learning rate η. */
  readonly eta: number;
}

/**
 * What the step perturbs: a ParameterSet (in place, synchronously) or weights held on a device (each pass a
 * run of the perturbation graph there).
 */
export interface PerturbationTarget {
  perturb(key: number, s: number): void | Promise<void>;
  perturb2(keyA: number, a: number, keyB: number, b: number): void | Promise<void>;
}

/** A batch's summed loss and the tokens it sums over. */
type LossSum = { readonly lossSum: number; readonly tokens: number };

/** What the step needs from a model session. */
export interface BatchLoss {
  lossSum(batch: TokenBatch): Promise<LossSum>;
  /**
   * Both losses of a step, `between` (the −2εz pass) run after the first forward is queued, read back in
   * one wait for the device (DeviceModelSession); absent, the step awaits each loss.
   */
  lossPair?(batch: TokenBatch, between: () => Promise<void>): Promise<readonly [LossSum, LossSum]>;
}

export interface StepEvent {
  readonly step: number;
  readonly seed: number;
  readonly lossPlus: number;
  readonly lossMinus: number;
  /** NaN when the step was skipped. */
  readonly g: number;
  readonly skipped: boolean;
}

export interface LocalTrainingOptions {
  readonly steps: number;
  readonly seeds: SeedSampler;
  readonly nextBatch: () => TokenBatch;
  readonly onStep?: (event: StepEvent) => void;
  /**
   * Asked between two steps: work that needs the weights at rest (a copy for completions), or undefined.
   * When there is some, the deferred update is applied first (one unfused pass) and the next step waits for it.
   */
  readonly atRest?: () => (() => Promise<void>) | undefined;
  /** Stops after the step in flight; the weights are left consistent (the deferred update applied). */
  readonly signal?: AbortSignal;
}

export interface LocalTrainingResult {
  readonly pairs: SeedGradient[];
  readonly stepsRun: number;
  readonly skipped: number;
  /** Mean of (L₊ + L₋)/2 over the steps that were not skipped: the round's training loss. */
  readonly meanLoss: number;
}

export class ZoTrainer {
  private readonly keys = new Map<number, number>();

  constructor(
    private readonly params: PerturbationTarget,
    private readonly model: BatchLoss,
    readonly config: ZoConfig,
  ) {
    const { epsilon, eta, k, federationSeed } = config;
    if (!(epsilon > 0) || !Number.isFinite(epsilon)) throw new RangeError(`ε must be a positive number, got ${epsilon}`);
    if (!(eta >= 0) || !Number.isFinite(eta)) throw new RangeError(`η must be a non-negative number, got ${eta}`);
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`K must be a positive integer, got ${k}`);
    if (!Number.isInteger(federationSeed) || federationSeed < 0 || federationSeed > 0xffffffff) {
      throw new RangeError(`federation seed must be an unsigned 32-bit integer, got ${federationSeed}`);
    }
  }

  private key(seed: number): number {
    let key = this.keys.get(seed);
    if (key === undefined) {
      if (!Number.isInteger(seed) || seed < 0 || seed >= this.config.k) throw new RangeError(`seed index ${seed} is outside [0, ${this.config.k})`);
      key = seedKey(this.config.federationSeed, seed);
      this.keys.set(seed, key);
    }
    return key;
  }

  /** Both losses of a step: the session's pair where it has one, else each awaited in turn. */
  private async lossPair(batch: TokenBatch, between: () => Promise<void>): Promise<readonly [LossSum, LossSum]> {
    if (this.model.lossPair) return this.model.lossPair(batch, between);
    const plus = await this.model.lossSum(batch);
    await between();
    return [plus, await this.model.lossSum(batch)];
  }

  /** τ local steps; returns the (seed, g) pairs to upload. */
  async train(options: LocalTrainingOptions): Promise<LocalTrainingResult> {
    const { epsilon, eta } = this.config;
    const pairs: SeedGradient[] = [];
    let skipped = 0;
    let lossTotal = 0;
    // The restore+update owed by the previous step: w += coef·z(key).
    let owed: { key: number; coef: number } | null = null;
    let step = 0;
    try {
      for (; step < options.steps && !options.signal?.aborted; step++) {
        const seed = options.seeds.next();
        const key = this.key(seed);
        const batch = options.nextBatch();
        const rest = owed ? options.atRest?.() : undefined;
        if (rest && owed) {
          await this.params.perturb(owed.key, owed.coef);
          owed = null;
          await rest();
        }
        if (owed) await this.params.perturb2(owed.key, owed.coef, key, epsilon);
        else await this.params.perturb(key, epsilon);
        owed = { key, coef: -epsilon }; // if the forward throws, undo +εz
        const minusPass = async (): Promise<void> => {
          await this.params.perturb(key, -2 * epsilon);
          owed = { key, coef: epsilon };
        };
        const [lossPlus, lossMinus] = (await this.lossPair(batch, minusPass)).map(mean);
        const ok = Number.isFinite(lossPlus) && Number.isFinite(lossMinus);
        const g = ok ? (lossPlus - lossMinus) / (2 * epsilon) : Number.NaN;
        if (ok) {
          owed = { key, coef: epsilon - eta * g };
          pairs.push({ seed, g });
          lossTotal += (lossPlus + lossMinus) / 2;
        } else {
          skipped++;
        }
        options.onStep?.({ step, seed, lossPlus, lossMinus, g, skipped: !ok });
      }
    } finally {
      if (owed) await this.params.perturb(owed.key, owed.coef);
    }
    return { pairs, stepsRun: step, skipped, meanLoss: pairs.length > 0 ? lossTotal / pairs.length : Number.NaN };
  }
}

function mean({ lossSum, tokens }: LossSum): number {
  return tokens > 0 ? lossSum / tokens : Number.NaN;
}
