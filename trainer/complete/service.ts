// Completions from the trainer's engine, beside training. Generation runs in its own onnxruntime session
// (trainer/complete/decoders.ts) over a copy of the weights, never over the live arrays a ZO step is
// perturbing. The copy of the current weights is taken while they are at rest — at once when no job
// runs, else at the next boundary between two ZO steps (local runs) or at a federation's sync (the
// committed replica) — and refreshed while completions are asked for, at most every 250 ms and never
// more often than ten times what a copy costs. Generation interleaves with the steps of a local run or a
// federation's round: a step boundary that finds a suggestion decoding waits for it, so a suggestion
// shares the CPU with at most the rest of one step, and training pauses only while the user is waiting
// for a suggestion. One completion decodes at a time; a newer request cancels the older one.
import type { Engine } from '../engine';
import { openCompletionDecoder, type CompletionDecoder } from './decoders';
import { complete, type Completion, type CompletionOptions } from './generator';
import { cursorIndent } from './stops';
import { baseWeights, snapshotWeights, type WeightMap } from './weights';

/** What a set of weights is, as the trainer describes it (contracts' WeightsState). */
export interface WeightsLabel<S> {
  readonly state: S;
  readonly takenAt: number;
}

export interface CompletionRequest extends Omit<CompletionOptions, 'indent' | 'eosId' | 'maxLength' | 'signal'> {
  /** Text before the cursor; its last tokens (up to the context less maxTokens) are the prompt. */
  readonly prefix: string;
  readonly source: 'current' | 'base';
}

export interface ServedCompletion<S> extends Completion {
  readonly source: 'current' | 'base';
  /** The weights it came from (null for the base model). */
  readonly weights: S | null;
  readonly promptTokens: number;
  readonly decoder: string;
}

export interface CompletionHost<S> {
  readonly engine: Engine;
  /** Whether a job (training, a federation) is changing the weights now. */
  busy(): boolean;
  /** The engine's weights now, described. */
  describe(): S;
}

const REFRESH_MS = 250;
/** A refresh costs one pass over the weights and a copy: training spends at most ~1/COST_SHARE of its time on them. */
const COST_SHARE = 10;

export class CompletionService<S> {
  private decoder: Promise<CompletionDecoder> | null = null;
  private current: { weights: WeightMap; label: WeightsLabel<S> } | null = null;
  private base: Promise<WeightMap> | null = null;
  private stale = true;
  private wanted: Array<() => void> = [];
  private running: AbortController | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * Completions decoding now; a step boundary waits while there are any. Not those still waiting for a copy
   * of the weights: that copy may need the training to go on (a federation's next sync).
   */
  private decoding = 0;
  private idleWaiters: Array<() => void> = [];
  /** Snapshots taken so far (for tests and the log). */
  snapshots = 0;
  private snapshotMs = 0;

  constructor(
    private readonly host: CompletionHost<S>,
    private readonly threads: number,
  ) {}

  /**
   * For a local run's loop between two steps, with the weights at rest: the copy to take now and a pause
   * while a suggestion decodes, or undefined when neither is wanted (the common case: nothing to do).
   */
  readonly atRest = (): (() => Promise<void>) | undefined => {
    if (this.wanted.length === 0 && this.decoding === 0) return undefined;
    return async () => {
      if (this.wanted.length > 0) await this.takeSnapshot();
      await this.decoded();
    };
  };

  /**
   * For a federation's round between two steps: a pause while a suggestion decodes, or undefined. No copy is
   * taken here: the working weights mid-round are local scratch, the replica is copied at each sync.
   */
  readonly whileDecoding = (): (() => Promise<void>) | undefined => {
    if (this.decoding === 0) return undefined;
    return () => this.decoded();
  };

  private async decoded(): Promise<void> {
    while (this.decoding > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** A federation synced its replica (the weights are the committed replica): take the copy now. */
  async synced(): Promise<void> {
    await this.takeSnapshot();
  }

  /** A job ended: the weights are at rest and may have changed; a request waiting for a copy gets one now. */
  async jobEnded(): Promise<void> {
    this.stale = true;
    if (this.wanted.length > 0) await this.takeSnapshot();
  }

  async complete(request: CompletionRequest, signal: AbortSignal): Promise<ServedCompletion<S>> {
    // A newer request supersedes the one decoding: the user typed on.
    this.running?.abort();
    const mine = new AbortController();
    this.running = mine;
    const onAbort = () => mine.abort();
    if (signal.aborted) mine.abort();
    else signal.addEventListener('abort', onAbort, { once: true });
    const run = this.queue.then(() => this.serve(request, mine.signal));
    this.queue = run.catch(() => undefined);
    try {
      return await run;
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (this.running === mine) this.running = null;
    }
  }

  async dispose(): Promise<void> {
    this.running?.abort();
    for (const resolve of this.wanted.splice(0)) resolve();
    await this.queue;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
    if (this.decoder) await (await this.decoder).release();
    this.decoder = null;
  }

  private async serve(request: CompletionRequest, signal: AbortSignal): Promise<ServedCompletion<S>> {
    const { engine } = this.host;
    const decoder = await (this.decoder ??= openCompletionDecoder(engine.model, engine.located.config, this.threads));
    let label: S | null = null;
    if (request.source === 'base') {
      decoder.bindWeights(await (this.base ??= baseWeights(engine)));
    } else {
      const current = await this.currentWeights(signal);
      decoder.bindWeights(current.weights);
      label = current.label.state;
    }
    const { tokenizer } = engine;
    const budget = Math.max(1, (engine.context ?? Infinity) - request.maxTokens);
    const ids = tokenizer.encode(request.prefix, { addSpecialTokens: false });
    const prompt = ids.length > 0 ? ids.slice(-budget) : [tokenizer.bosId ?? tokenizer.eosId ?? tokenizer.padId];
    this.decoding++;
    let result: Completion;
    try {
      result = await complete(decoder.model, (t) => tokenizer.decode(t, { skipSpecialTokens: true }), prompt, {
        ...request,
        indent: cursorIndent(request.prefix),
        eosId: tokenizer.eosId,
        maxLength: engine.context,
        signal,
      });
    } finally {
      if (--this.decoding === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
    // The decoder actually used: a request with useCache false re-runs the sequence whatever the model offers.
    const used = request.useCache === false ? 'no-cache' : decoder.kind;
    return { ...result, source: request.source, weights: label, promptTokens: prompt.length, decoder: used };
  }

  /** The copy of the current weights: fresh at once when idle; while a job runs, the last copy (or the next one, when there is none yet). */
  private async currentWeights(signal: AbortSignal): Promise<{ weights: WeightMap; label: WeightsLabel<S> }> {
    if (!this.host.busy()) {
      if (this.stale || !this.current) await this.takeSnapshot();
    } else {
      const old = !this.current || performance.now() - this.current.label.takenAt > Math.max(REFRESH_MS, COST_SHARE * this.snapshotMs);
      const next = old ? this.want() : null;
      if (!this.current && next) await Promise.race([next, new Promise((r) => signal.addEventListener('abort', r, { once: true }))]);
    }
    if (!this.current) throw new Error('the weights were not at rest before the request was cancelled');
    return this.current;
  }

  private want(): Promise<void> {
    return new Promise((resolve) => this.wanted.push(resolve));
  }

  private async takeSnapshot(): Promise<void> {
    const started = performance.now();
    const state = this.host.describe();
    const weights = await snapshotWeights(this.host.engine);
    this.snapshotMs = performance.now() - started;
    this.current = { weights, label: { state, takenAt: performance.now() } };
    this.stale = false;
    this.snapshots++;
    for (const resolve of this.wanted.splice(0)) resolve();
  }
}
