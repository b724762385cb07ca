// Hugging Face tokenizer.json (+ tokenizer_config.json) through the pure-JS @huggingface/tokenizers.
// Special tokens are never added implicitly: the data pipeline appends EOS itself where it wants one.
// A tokenizer without an EOS token loads (pre-tokenised data and loss need none); what needs one asks
// for it (requireEos). Without any tokenizer, pre-tokenised data still works (tokenIdsOnly).
import { Tokenizer } from '@huggingface/tokenizers';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { errorMessage } from '../../protocol/errors';

/** What the data pipeline and evaluation need from a tokenizer. */
export interface TextTokenizer {
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): string;
  /** The end-of-sequence id; undefined when the tokenizer has none (see requireEos). */
  readonly eosId: number | undefined;
  /** Padding id (masked out of the loss, so any id works): pad_token, else EOS, else 0. */
  readonly padId: number;
  readonly bosId: number | undefined;
  /** Largest token id + 1, added tokens included. */
  readonly vocabSize: number;
  /** Where it came from, for messages. */
  readonly source?: string;
  /** True for the stand-in of a model without a tokenizer: token ids only, no text either way. */
  readonly idsOnly?: boolean;
}

export interface TokenizerOverrides {
  eosToken?: string;
  padToken?: string;
}

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** tokenizer_config.json writes special tokens either as strings or as {content: "..."} objects. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

const EOS_FALLBACKS = ['<|endoftext|>', '</s>', '<eos>', '<|end_of_text|>', '<|im_end|>'];

/** The EOS id, or an error saying what needs it and how to give one. */
export function requireEos(tokenizer: TextTokenizer, what: string): number {
  if (tokenizer.eosId === undefined) {
    throw new Error(
      `${what} end with an EOS token, and ${tokenizer.source ?? 'the tokenizer'} has none (set eos_token in tokenizer_config.json, or use pre-tokenised data)`,
    );
  }
  return tokenizer.eosId;
}

class HfTextTokenizer implements TextTokenizer {
  readonly eosId: number | undefined;
  readonly padId: number;
  readonly bosId: number | undefined;
  readonly vocabSize: number;

  constructor(
    private readonly inner: Tokenizer,
    config: JsonObject,
    readonly source: string,
    overrides: TokenizerOverrides,
  ) {
    const idOf = (token: string | undefined): number | undefined => (token === undefined ? undefined : inner.token_to_id(token));
    const resolve = (what: string, token: string | undefined): number | undefined => {
      if (token === undefined) return undefined;
      const id = idOf(token);
      if (id === undefined) throw new Error(`${source}: ${what} token ${JSON.stringify(token)} is not in the vocabulary`);
      return id;
    };

    const eos = resolve('eos', overrides.eosToken ?? tokenText(config.eos_token)) ?? EOS_FALLBACKS.map(idOf).find((id) => id !== undefined);
    this.eosId = eos;
    // Padding positions are masked out, so reusing EOS is safe when no pad token exists (GPT-2 style).
    this.padId = resolve('pad', overrides.padToken ?? tokenText(config.pad_token)) ?? eos ?? 0;
    this.bosId = resolve('bos', tokenText(config.bos_token));
    let max = -1;
    for (const id of inner.get_vocab(true).values()) if (id > max) max = id;
    this.vocabSize = max + 1;
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    return this.inner.encode(text, { add_special_tokens: options.addSpecialTokens ?? false }).ids;
  }

  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    // The library rejects an empty list; a generation that stops at once is the empty string.
    if (ids.length === 0) return '';
    return this.inner.decode(Array.from(ids), { skip_special_tokens: options.skipSpecialTokens ?? false });
  }
}

function readJson(path: string): JsonObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: cannot read tokenizer file: ${errorMessage(err)}`, { cause: err });
  }
  if (!isObject(parsed)) throw new Error(`${path}: expected a JSON object`);
  return parsed;
}

/**
 * Loads `tokenizer.json` from a model folder (or the file itself) and, next to it,
 * `tokenizer_config.json` when present for the eos/pad/bos tokens.
 */
export function loadTokenizer(path: string, overrides: TokenizerOverrides = {}): TextTokenizer {
  const file = statSync(path).isDirectory() ? join(path, 'tokenizer.json') : path;
  const configPath = join(dirname(file), 'tokenizer_config.json');
  const json = readJson(file);
  const config = existsSync(configPath) ? readJson(configPath) : {};
  let inner: Tokenizer;
  try {
    inner = new Tokenizer(json, config);
  } catch (err) {
    throw new Error(`${file}: unsupported tokenizer: ${errorMessage(err)}`, { cause: err });
  }
  return new HfTextTokenizer(inner, config, file, overrides);
}

/**
 * Stands in for a tokenizer when a model comes without one: token ids only (pre-tokenised data), with
 * the model's vocabulary size; encoding or decoding text is an error that says so.
 */
export function tokenIdsOnly(vocabSize: number, model: string): TextTokenizer {
  const missing = (): never => {
    throw new Error(`no tokenizer for ${model}: text needs its tokenizer.json (pass --tokenizer); pre-tokenised data works without one`);
  };
  return { encode: missing, decode: missing, eosId: undefined, padId: 0, bosId: undefined, vocabSize, source: `${model} (no tokenizer)`, idsOnly: true };
}
