// What fine-tuning changed, in text: a few held-out windows, each token's loss under the base model and
// under the final global model, and the greedy completion of each window's first half by both. The report
// colours every token by how its loss moved, so a reader sees where the federation taught the model
// something, not only that an average fell.
import type { Example } from '../trainer/data/examples';
import type { Engine } from '../trainer/engine';
import { greedyGenerate } from '../trainer/model/generate';
import { tokenLosses } from '../trainer/eval/token-losses';

/** Windows shown; each costs one forward of n − 1 rows and one short generation per model. */
export const SAMPLE_COUNT = 3;
/** New tokens of each completion. */
export const COMPLETION_TOKENS = 24;
/** Windows shorter than this say too little to show. */
const MIN_TOKENS = 16;

/** One model's view of a window. */
export interface SampleMeasure {
  /** Loss (nats) of tokens 1 … n − 1, given the ones before. */
  readonly tokenLoss: readonly number[];
  /** Greedy completion of the window's prompt. */
  readonly completion: string;
}

export interface TextSample {
  readonly exampleId: string;
  /** The window's tokens as text, in order (joined, they give the window). */
  readonly pieces: readonly string[];
  /** Tokens of the window that form the completion prompt (its first half, or an instruction's prompt). */
  readonly promptTokens: number;
  readonly base: SampleMeasure;
  /** The final global model's view; null when no round was committed. */
  readonly final: SampleMeasure | null;
}

export interface TextSamplesReport {
  /** The committed round the final measures come from (0: none). */
  readonly round: number;
  readonly samples: readonly TextSample[];
}

/** The first held-out windows long enough to show (text data only: pre-tokenised ids have no text). */
export function pickSamples(heldOut: readonly Example[], engine: Engine): Example[] {
  if (engine.tokenizer.idsOnly) return [];
  return heldOut.filter((e) => e.ids.length >= MIN_TOKENS).slice(0, SAMPLE_COUNT);
}

/**
 * Token texts whose concatenation is the decoded window. A character split over several byte-level tokens
 * is given whole to its last token (the ones before it read as ''), so no token shows a broken character.
 */
export function tokenPieces(decode: (ids: ArrayLike<number>) => string, ids: ArrayLike<number>): string[] {
  const pieces: string[] = [];
  let emitted = '';
  for (let i = 1; i <= ids.length; i++) {
    const text = decode(Array.prototype.slice.call(ids, 0, i) as number[]);
    if (i < ids.length && text.endsWith('\uFFFD')) {
      pieces.push('');
      continue;
    }
    pieces.push(text.startsWith(emitted) ? text.slice(emitted.length) : decode([ids[i - 1]]));
    emitted = text;
  }
  return pieces;
}

const promptLength = (e: Example): number => e.promptLength ?? Math.floor(e.ids.length / 2);

/** Measures the windows with the engine's current weights. */
export async function measureSamples(engine: Engine, examples: readonly Example[]): Promise<SampleMeasure[]> {
  const { tokenizer } = engine;
  const out: SampleMeasure[] = [];
  for (const e of examples) {
    const losses = await tokenLosses(engine.generator, e.ids, tokenizer.padId);
    const prompt = Array.from(e.ids.subarray(0, promptLength(e)));
    const [generation] = await greedyGenerate(engine.generator, [prompt], {
      maxNewTokens: COMPLETION_TOKENS,
      eosId: tokenizer.eosId ?? -1,
      padId: tokenizer.padId,
      maxLength: engine.context ?? prompt.length + COMPLETION_TOKENS,
    });
    out.push({ tokenLoss: Array.from(losses), completion: tokenizer.decode(generation.tokens, { skipSpecialTokens: true }) });
  }
  return out;
}

/** The report's samples from the base measures and, when a round was committed, the final ones. */
export function textSamplesReport(
  engine: Engine,
  examples: readonly Example[],
  base: readonly SampleMeasure[],
  final: readonly SampleMeasure[] | null,
  round: number,
): TextSamplesReport {
  const decode = (ids: ArrayLike<number>) => engine.tokenizer.decode(ids, { skipSpecialTokens: true });
  return {
    round,
    samples: examples.map((e, i) => ({
      exampleId: e.id,
      pieces: tokenPieces(decode, e.ids),
      promptTokens: promptLength(e),
      base: base[i],
      final: final?.[i] ?? null,
    })),
  };
}
