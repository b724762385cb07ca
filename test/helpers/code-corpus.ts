// A fixed corpus of ordinary TypeScript, generated from a seed: tests that fine-tune on "code the model
// has not seen" read it instead of this repository's own sources, whose changes would move the outcome.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const NOUNS = ['order', 'invoice', 'customer', 'product', 'account', 'session', 'ticket', 'report', 'payment', 'shipment', 'review', 'coupon'];
const VERBS = ['load', 'save', 'validate', 'format', 'merge', 'filter', 'sort', 'count', 'find', 'update'];
const FIELDS = ['id', 'name', 'total', 'createdAt', 'status', 'owner', 'amount', 'tags', 'notes', 'priority'];
const TYPES = ['string', 'number', 'boolean', 'Date', 'string[]'];

/** mulberry32: small, seeded and identical on every platform. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const capital = (word: string): string => word[0].toUpperCase() + word.slice(1);

function module(noun: string, random: () => number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const type = capital(noun);
  const fields = FIELDS.filter(() => random() < 0.6);
  const lines = [`export interface ${type} {`, ...fields.map((f) => `  ${f}: ${pick(TYPES)};`), '}', ''];
  for (const verb of VERBS.filter(() => random() < 0.5)) {
    const field = pick(fields.length > 0 ? fields : FIELDS);
    lines.push(
      `export function ${verb}${type}s(items: ${type}[], limit = ${1 + Math.floor(random() * 50)}): ${type}[] {`,
      `  const result: ${type}[] = [];`,
      '  for (const item of items) {',
      `    if (result.length >= limit) break;`,
      `    if (item.${field} !== undefined) result.push(item);`,
      '  }',
      '  return result;',
      '}',
      '',
    );
  }
  lines.push(
    `export class ${type}Store {`,
    `  private readonly items = new Map<string, ${type}>();`,
    '',
    `  get(key: string): ${type} | undefined {`,
    '    return this.items.get(key);',
    '  }',
    '',
    `  set(key: string, value: ${type}): void {`,
    '    this.items.set(key, value);',
    '  }',
    '}',
    '',
  );
  return lines.join('\n');
}

/** Writes `files` TypeScript modules under `dir` (several per noun), the same for the same seed. */
export function writeCodeCorpus(dir: string, files = 48, seed = 7): void {
  const random = rng(seed);
  mkdirSync(dir, { recursive: true });
  for (let f = 0; f < files; f++) {
    const noun = NOUNS[f % NOUNS.length];
    writeFileSync(join(dir, `${noun}-${Math.floor(f / NOUNS.length)}.ts`), module(noun, random));
  }
}
