// How every contract is checked where a message enters a process: a zod schema's verdict as a value,
// with the offending fields named.
import type * as z from 'zod/mini';

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

export function parseWith<T>(schema: z.ZodMiniType<T>, input: unknown): ParseResult<T> {
  const result = schema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, error: result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
}

/** One line of a JSON-lines stream against a schema; null for anything else (blank lines, warnings, other events). */
export function parseJsonLine<T>(schema: z.ZodMiniType<T>, line: string): T | null {
  if (!line.startsWith('{')) return null;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  const parsed = parseWith(schema, value);
  return parsed.ok ? parsed.value : null;
}
