// Field checks shared by the instruction formats; each returns a problem message or the value.
import { describe } from './json-lines';

export type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

export function stringField(obj: Record<string, unknown>, key: string, opts: { optional?: boolean; nonEmpty?: boolean } = {}): Checked<string> {
  const v = obj[key];
  if (v === undefined || v === null) {
    return opts.optional ? { ok: true, value: '' } : { ok: false, message: `missing field "${key}"` };
  }
  if (typeof v !== 'string') return { ok: false, message: `field "${key}" must be a string, got ${describe(v)}` };
  if (opts.nonEmpty && v.trim() === '') return { ok: false, message: `field "${key}" is empty` };
  return { ok: true, value: v };
}
