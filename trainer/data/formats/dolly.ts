// Dolly-15K JSONL: {"instruction", "context", "response", "category"} per line.
import { basename } from 'node:path';
import type { ProblemLog } from '../problems';
import type { InstructionRecord } from '../records';
import { stringField } from './fields';
import { readJsonLines } from './json-lines';

export async function* readDolly(file: string, log: ProblemLog): AsyncGenerator<InstructionRecord> {
  const name = basename(file);
  for await (const { line, value } of readJsonLines(file, log)) {
    const instruction = stringField(value, 'instruction', { nonEmpty: true });
    const context = stringField(value, 'context', { optional: true });
    const response = stringField(value, 'response', { nonEmpty: true });
    const category = stringField(value, 'category', { nonEmpty: true });
    const bad = [instruction, context, response, category].find((c) => !c.ok);
    if (bad && !bad.ok) {
      log.report(file, line, bad.message);
      continue;
    }
    if (!instruction.ok || !context.ok || !response.ok || !category.ok) continue;
    yield {
      kind: 'instruction',
      id: `${name}:${line}`,
      group: category.value,
      instruction: instruction.value,
      input: context.value,
      output: response.value,
      source: { file, line },
    };
  }
}
