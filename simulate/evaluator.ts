// The simulation's one evaluator: a canonical replica of the global model (base + the server's
// committed coefficients, applied round by round exactly as clients apply them) and the held-out
// examples no client trains on.
import type { FederationConfig } from '../protocol';
import type { Example } from '../trainer/data/examples';
import { followPerturbation, type Engine } from '../trainer/engine';
import { evaluateLoss, type LossSummary } from '../trainer/eval/loss';

export interface Evaluation {
  readonly round: number;
  readonly heldOut: LossSummary;
  /** SHA-256 of the replica evaluated; equals every client's digest for that round. */
  readonly digest: string;
  readonly ms: number;
}

export class GlobalEvaluator {
  private round = 0;

  constructor(
    private readonly engine: Engine,
    private readonly heldOut: readonly Example[],
    private readonly config: FederationConfig,
    private readonly options: { readonly batchSize: number; readonly seqLen: number },
  ) {
    if (heldOut.length === 0) throw new Error('no held-out examples to evaluate the global model on');
  }

  get syncedRound(): number {
    return this.round;
  }

  /** Applies one committed round's integer change ΔC (dense, K entries). */
  advance(round: number, change: Float64Array): void {
    if (round !== this.round + 1) throw new Error(`the evaluator holds round ${this.round} and cannot apply round ${round}`);
    const seeds: number[] = [];
    const values: number[] = [];
    change.forEach((c, j) => {
      if (c !== 0) {
        seeds.push(j);
        values.push(c);
      }
    });
    followPerturbation(this.engine, this.config);
    if (seeds.length > 0) this.engine.params.applyCoefficientDelta(this.config.federationSeed, seeds, values, this.config.eta);
    this.round = round;
  }

  async evaluate(): Promise<Evaluation> {
    const started = performance.now();
    const heldOut = await evaluateLoss(this.engine.session, this.heldOut, { ...this.options, padId: this.engine.tokenizer.padId });
    return { round: this.round, heldOut, digest: this.engine.params.digest(), ms: performance.now() - started };
  }
}
