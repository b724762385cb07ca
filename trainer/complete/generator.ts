// One completion of one prompt: the prompt runs once over the decoder's KV cache (or, without one, every
// new token re-runs the whole sequence), tokens are chosen by the sampling settings, and the text ends at
// the stop rule, at EOS, at the token limit or at the model's context. An aborted signal ends it between
// two forwards: the editor's cancellation reaches the generator as the user types.
import type { IncrementalDecoder, NextTokenModel } from '../model/generate';
import { tokenChooser, type Sampling } from './sampling';
import { stopIndex, type StopRule } from './stops';

export type CompletionFinish = 'stop' | 'eos' | 'max-tokens' | 'max-length' | 'cancelled';

export interface CompletionOptions {
  readonly maxTokens: number;
  readonly sampling: Sampling;
  readonly stop: StopRule;
  /** The cursor line's indentation (the block rule keeps to it). */
  readonly indent?: string;
  /** End-of-sequence id; -1 or undefined: none. */
  readonly eosId?: number;
  /** The model's context: prompt + new tokens stop there. */
  readonly maxLength?: number;
  /** Use the decoder's KV cache when there is one (default true). */
  readonly useCache?: boolean;
  readonly signal?: AbortSignal;
}

export interface Completion {
  /** The completion's text, cut at the stop rule. */
  readonly text: string;
  /** Tokens generated (those past the cut included). */
  readonly tokens: number;
  readonly finish: CompletionFinish;
  /** From the call to the first token chosen (the prompt's forward), ms; null when none was. */
  readonly firstTokenMs: number | null;
  readonly totalMs: number;
}

export interface CompletionModel extends NextTokenModel {
  readonly decoder?: IncrementalDecoder | null;
}

export async function complete(
  model: CompletionModel,
  decode: (ids: readonly number[]) => string,
  prompt: readonly number[],
  o: CompletionOptions,
): Promise<Completion> {
  if (prompt.length === 0) throw new RangeError('the prompt is empty: a completion needs at least one token');
  if (!Number.isInteger(o.maxTokens) || o.maxTokens < 1) throw new RangeError(`maxTokens must be a positive integer, got ${o.maxTokens}`);
  const started = performance.now();
  const choose = tokenChooser(o.sampling);
  const maxLength = o.maxLength ?? Infinity;
  const eos = o.eosId ?? -1;
  const decoder = o.useCache === false ? null : (model.decoder ?? null);
  const seq = [...prompt];
  const out: number[] = [];
  let firstTokenMs: number | null = null;
  let text = '';
  const done = (finish: CompletionFinish, cut = -1): Completion => ({
    text: cut >= 0 ? text.slice(0, cut) : text,
    tokens: out.length,
    finish,
    firstTokenMs,
    totalMs: performance.now() - started,
  });
  if (o.signal?.aborted) return done('cancelled');
  if (seq.length >= maxLength) return done('max-length');

  let state: unknown = null;
  let logits: Float32Array;
  if (decoder) ({ logits, state } = await decoder.prefill(BigInt64Array.from(seq, BigInt), 1, seq.length));
  else logits = await model.lastLogits(BigInt64Array.from(seq, BigInt), new BigInt64Array(seq.length).fill(1n), 1, seq.length);
  for (;;) {
    if (o.signal?.aborted) return done('cancelled');
    const next = choose(logits, 0, logits.length);
    firstTokenMs ??= performance.now() - started;
    if (next === eos) return done('eos');
    out.push(next);
    seq.push(next);
    text = decode(out);
    const cut = stopIndex(text, o.stop, o.indent);
    if (cut >= 0) return done('stop', cut);
    if (out.length >= o.maxTokens) return done('max-tokens');
    if (seq.length >= maxLength) return done('max-length');
    if (decoder) ({ logits, state } = await decoder.step(state, [0], BigInt64Array.of(BigInt(next))));
    else logits = await model.lastLogits(BigInt64Array.from(seq, BigInt), new BigInt64Array(seq.length).fill(1n), 1, seq.length);
  }
}
