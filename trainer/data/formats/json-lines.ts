// Streams a JSONL file line by line so large files are never held in memory whole.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { ProblemLog } from '../problems';
import { errorMessage } from '../../../protocol/errors';

export interface JsonLine {
  readonly line: number;
  readonly value: Record<string, unknown>;
}

/** Yields each non-blank line that parses to a JSON object; reports every other line. */
export async function* readJsonLines(file: string, log: ProblemLog): AsyncGenerator<JsonLine> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const raw of lines) {
      line++;
      const text = line === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (text.trim() === '') continue;
      const value = parseJsonObject(text, file, line, log);
      if (value) yield { line, value };
    }
  } finally {
    lines.close();
  }
}

/** One JSON object from its source text, or null after reporting why it is not one. */
export function parseJsonObject(text: string, file: string, line: number, log: ProblemLog): Record<string, unknown> | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    log.report(file, line, `invalid JSON: ${errorMessage(err)}`);
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    log.report(file, line, `expected a JSON object, got ${describe(value)}`);
    return null;
  }
  return value as Record<string, unknown>;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
