// Alpaca data: a JSON array of {"instruction", "input"?, "output", "category"?} or the same objects
// one per line (JSONL). Without a category the group is the file's base name.
import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import type { ProblemLog } from '../problems';
import type { InstructionRecord } from '../records';
import { stringField } from './fields';
import { parseJsonObject, readJsonLines } from './json-lines';
import { JsonScanError, LineIndex, jsonDocument } from './json-document';

function toRecord(value: Record<string, unknown>, file: string, line: number, log: ProblemLog): InstructionRecord | undefined {
  const instruction = stringField(value, 'instruction', { nonEmpty: true });
  const input = stringField(value, 'input', { optional: true });
  const output = stringField(value, 'output', { nonEmpty: true });
  const category = stringField(value, 'category', { optional: true });
  for (const c of [instruction, input, output, category]) {
    if (!c.ok) {
      log.report(file, line, c.message);
      return undefined;
    }
  }
  if (!instruction.ok || !input.ok || !output.ok || !category.ok) return undefined;
  const name = basename(file);
  return {
    kind: 'instruction',
    id: `${name}:${line}`,
    group: category.value || basename(file, extname(file)),
    instruction: instruction.value,
    input: input.value,
    output: output.value,
    source: { file, line },
  };
}

async function* readAlpacaJsonl(file: string, log: ProblemLog): AsyncGenerator<InstructionRecord> {
  for await (const { line, value } of readJsonLines(file, log)) {
    const record = toRecord(value, file, line, log);
    if (record) yield record;
  }
}

async function* readAlpacaArray(file: string, log: ProblemLog): AsyncGenerator<InstructionRecord> {
  const text = (await readFile(file, 'utf8')).replace(/^\uFEFF/, '');
  const lines = new LineIndex(text);
  let children;
  try {
    const doc = jsonDocument(text);
    if (doc.type !== 'array') throw new JsonScanError('expected a JSON array of examples', 0);
    children = doc.children;
  } catch (err) {
    if (!(err instanceof JsonScanError)) throw err;
    log.report(file, lines.lineOf(err.offset), `invalid JSON: ${err.message}`);
    return;
  }
  // Ids use the element's line, like JSONL, so a reformatted file keeps the same split only if
  // lines stay put; that is the price of not inventing ids the data does not have.
  for (const child of children) {
    const line = lines.lineOf(child.start);
    const value = parseJsonObject(text.slice(child.start, child.end), file, line, log);
    const record = value && toRecord(value, file, line, log);
    if (record) yield record;
  }
}

/** `.json` files are read as one array; anything else as JSON lines. */
export function readAlpaca(file: string, log: ProblemLog): AsyncGenerator<InstructionRecord> {
  return extname(file).toLowerCase() === '.json' ? readAlpacaArray(file, log) : readAlpacaJsonl(file, log);
}
