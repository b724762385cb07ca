// The simulation's round loop, seen from the evaluator: after every round the server commits, the
// evaluator applies its change to the canonical replica and measures the held-out loss, one round after
// another in commit order while the clients already train the next. Each evaluation becomes the round's
// report line.
import type { FederationServer } from '../federation/server';
import type { FederationConfig } from '../protocol';
import type { Evaluation, GlobalEvaluator } from './evaluator';
import type { SimulationListener } from './options';
import type { RoundReport } from './report';

const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);

export class RoundEvaluations {
  readonly rounds: RoundReport[] = [];
  cumulativeBytes = 0;
  cumulativeFedAvg = 0;
  private readonly roundStart = new Map<number, number>();
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | null = null;

  constructor(
    private readonly evaluator: GlobalEvaluator,
    private readonly config: FederationConfig,
    private readonly onEvent: SimulationListener,
  ) {}

  /** Round 0: the base model, before any client trained. */
  async evaluateBase(): Promise<void> {
    this.record(await this.evaluator.evaluate(), {});
  }

  /** Evaluates every round `server` commits from now on. */
  follow(server: FederationServer): void {
    server.events.on('roundStarted', (e) => {
      if (!this.roundStart.has(e.round)) this.roundStart.set(e.round, performance.now());
    });
    server.events.on('roundCommitted', (c) => {
      const committedAt = performance.now();
      this.chain = this.chain.then(async () => {
        if (this.failure) return;
        try {
          const change = (await server.store.loadRound(c.round))?.change;
          if (!change) throw new Error(`round ${c.round} is missing from the store`);
          this.evaluator.advance(c.round, change);
          this.cumulativeBytes += c.bytes.up + c.bytes.down;
          this.cumulativeFedAvg += c.bytes.fedAvg;
          this.record(await this.evaluator.evaluate(), {
            participants: c.participants,
            examples: c.examples,
            clientLossBefore: finite(c.lossBefore),
            clientLossAfter: finite(c.lossAfter),
            bytes: c.bytes,
            seconds: (committedAt - (this.roundStart.get(c.round) ?? committedAt)) / 1000,
          });
        } catch (err) {
          this.failure = err as Error;
        }
      });
    });
  }

  /** Waits for the evaluations still running; the first that failed, if one did. */
  async settled(): Promise<Error | null> {
    await this.chain;
    return this.failure;
  }

  /** The round reports with the digests the clients reported for each, and whether they agree with the evaluator's. */
  withClientDigests(digests: ReadonlyMap<number, ReadonlyMap<string, string>>): RoundReport[] {
    return this.rounds.map((r): RoundReport => {
      const reported = Object.fromEntries(digests.get(r.round) ?? []);
      const values = Object.values(reported);
      return { ...r, clientDigests: reported, digestsAgree: values.length === 0 ? null : values.every((d) => d === r.digest) };
    });
  }

  private record(e: Evaluation, extra: Partial<RoundReport>): void {
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
      cumulativeBytes: this.cumulativeBytes,
      cumulativeFedAvgBytes: this.cumulativeFedAvg,
      seconds: 0,
      evalMs: e.ms,
      ...extra,
    };
    this.rounds.push(report);
    this.onEvent({ type: 'round', report, rounds: this.config.rounds });
  }
}
