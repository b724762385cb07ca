// Natural Instructions task files (task001_….json): "Definition" (array of strings),
// "Positive Examples" [{input, output}], "Instances" [{id, input, output: string[]}].
// One record per instance; the group is the task (file base name), as one client per task.
import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import type { ProblemLog } from '../problems';
import type { InstructionRecord } from '../records';
import { describe } from './json-lines';
import { type JsonChild, JsonScanError, LineIndex, jsonChildren, jsonDocument } from './json-document';
import { errorMessage } from '../../../protocol/errors';

export interface NaturalInstructionsOptions {
  /** How many "Positive Examples" to show after the definition (default 0: definition only). */
  positiveExamples?: number;
}

function parseChild(text: string, child: JsonChild): unknown {
  return JSON.parse(text.slice(child.start, child.end));
}

function stringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

function formatDefinition(definition: string[], positives: unknown, count: number): string {
  let text = definition.join('\n').trim();
  if (count <= 0 || !Array.isArray(positives)) return text;
  positives.slice(0, count).forEach((ex, i) => {
    const e = ex as Record<string, unknown>;
    if (typeof e?.input === 'string' && typeof e?.output === 'string') {
      text += `\n\nPositive Example ${i + 1} -\nInput: ${e.input}\nOutput: ${e.output}`;
    }
  });
  return text;
}

export async function* readNaturalInstructions(file: string, log: ProblemLog, options: NaturalInstructionsOptions = {}): AsyncGenerator<InstructionRecord> {
  const task = basename(file, extname(file));
  const text = (await readFile(file, 'utf8')).replace(/^\uFEFF/, '');
  const lines = new LineIndex(text);
  let fields: Map<string, JsonChild>;
  let instances: JsonChild[];
  try {
    const doc = jsonDocument(text);
    if (doc.type !== 'object') throw new JsonScanError('expected a task object', 0);
    fields = new Map(doc.children.map((c) => [c.key ?? '', c]));
    const inst = fields.get('Instances');
    if (!inst) throw new JsonScanError('missing "Instances"', 0);
    const found = jsonChildren(text, inst.start);
    if (found.type !== 'array') throw new JsonScanError('"Instances" must be an array', inst.start);
    instances = found.children;
  } catch (err) {
    if (!(err instanceof JsonScanError)) throw err;
    log.report(file, err.offset > 0 ? lines.lineOf(err.offset) : 0, `invalid task file: ${err.message}`);
    return;
  }

  const defField = fields.get('Definition');
  let definition: unknown;
  try {
    definition = defField ? parseChild(text, defField) : undefined;
  } catch (err) {
    log.report(file, lines.lineOf(defField?.start ?? 0), `invalid JSON in "Definition": ${errorMessage(err)}`);
    return;
  }
  if (!stringArray(definition) || definition.join('').trim() === '') {
    log.report(file, defField ? lines.lineOf(defField.start) : 0, '"Definition" must be a non-empty array of strings');
    return;
  }
  let positives: unknown = [];
  const posField = fields.get('Positive Examples');
  if ((options.positiveExamples ?? 0) > 0 && posField) {
    try {
      positives = parseChild(text, posField);
    } catch (err) {
      log.report(file, lines.lineOf(posField.start), `invalid JSON in "Positive Examples": ${errorMessage(err)}`);
    }
  }
  const instruction = formatDefinition(definition, positives, options.positiveExamples ?? 0);

  for (const child of instances) {
    const line = lines.lineOf(child.start);
    let value: unknown;
    try {
      value = parseChild(text, child);
    } catch (err) {
      log.report(file, line, `invalid JSON: ${errorMessage(err)}`);
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      log.report(file, line, `instance must be an object, got ${describe(value)}`);
      continue;
    }
    const inst = value as Record<string, unknown>;
    if (inst.id !== undefined && typeof inst.id !== 'string') {
      log.report(file, line, `instance "id" must be a string, got ${describe(inst.id)}`);
      continue;
    }
    if (typeof inst.input !== 'string') {
      log.report(file, line, inst.input === undefined ? 'instance has no "input"' : `instance "input" must be a string, got ${describe(inst.input)}`);
      continue;
    }
    if (!stringArray(inst.output) || inst.output.length === 0 || inst.output[0].trim() === '') {
      log.report(file, line, 'instance "output" must be a non-empty array of strings');
      continue;
    }
    yield {
      kind: 'instruction',
      id: inst.id ?? `${task}:${line}`,
      group: task,
      instruction,
      input: inst.input,
      // The first reference is the training target and the Rouge-L reference.
      output: inst.output[0],
      source: { file, line },
    };
  }
}
