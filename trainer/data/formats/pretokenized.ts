// Pre-tokenised JSONL: {"input_ids": [...], "labels"?: [...], "loss_mask"?: [...], "group"?, "id"?}.
// "labels" follows the Hugging Face convention (unshifted, -100 = ignore, otherwise equal to the
// input id); "loss_mask" is 0/1 per token. Both mean "is token t a prediction target".
import { basename } from 'node:path';
import type { ProblemLog } from '../problems';
import type { TokenRecord } from '../records';
import { readJsonLines } from './json-lines';

export interface PretokenizedOptions {
  /** When known, ids outside [0, vocabSize) are reported. */
  vocabSize?: number;
}

function intArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isInteger(x));
}

export async function* readPretokenized(file: string, log: ProblemLog, options: PretokenizedOptions = {}): AsyncGenerator<TokenRecord> {
  const name = basename(file);
  for await (const { line, value } of readJsonLines(file, log)) {
    const ids = value.input_ids;
    if (!intArray(ids) || ids.length === 0) {
      log.report(file, line, '"input_ids" must be a non-empty array of integers');
      continue;
    }
    const vocab = options.vocabSize;
    const badId = ids.findIndex((id) => id < 0 || (vocab !== undefined && id >= vocab));
    if (badId !== -1) {
      log.report(file, line, `input_ids[${badId}] = ${ids[badId]} is outside the vocabulary${vocab !== undefined ? ` [0, ${vocab})` : ''}`);
      continue;
    }
    let mask: number[] | undefined;
    if (value.labels !== undefined) {
      const labels = value.labels;
      if (!intArray(labels) || labels.length !== ids.length) {
        log.report(file, line, '"labels" must be an array of integers as long as "input_ids"');
        continue;
      }
      const mismatch = labels.findIndex((l, t) => l !== -100 && l !== ids[t]);
      if (mismatch !== -1) {
        log.report(file, line, `labels[${mismatch}] must be -100 or equal to input_ids[${mismatch}] (labels are unshifted)`);
        continue;
      }
      mask = labels.map((l) => (l === -100 ? 0 : 1));
    }
    if (value.loss_mask !== undefined) {
      const lm = value.loss_mask;
      if (!intArray(lm) || lm.length !== ids.length || lm.some((x) => x !== 0 && x !== 1)) {
        log.report(file, line, '"loss_mask" must be an array of 0/1 as long as "input_ids"');
        continue;
      }
      if (mask) {
        log.report(file, line, 'give either "labels" or "loss_mask", not both');
        continue;
      }
      mask = lm;
    }
    if (value.group !== undefined && typeof value.group !== 'string') {
      log.report(file, line, '"group" must be a string');
      continue;
    }
    if (value.id !== undefined && typeof value.id !== 'string' && typeof value.id !== 'number') {
      log.report(file, line, '"id" must be a string or a number');
      continue;
    }
    yield {
      kind: 'tokens',
      id: value.id !== undefined ? String(value.id) : `${name}:${line}`,
      group: typeof value.group === 'string' ? value.group : 'default',
      inputIds: ids,
      ...(mask ? { lossMask: mask } : {}),
      source: { file, line },
    };
  }
}
