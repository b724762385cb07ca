// Client ids: what HELLO carries, what a token may be granted, and how they are printed. One rule
// everywhere: 1 to MAX_CLIENT_ID_BYTES bytes of UTF-8 without control or format characters (an ANSI
// escape, a carriage return or a bidirectional override would rewrite an operator's terminal).
import { MAX_CLIENT_ID_BYTES } from './messages';

/** C0 and C1 controls, DEL, and format characters (bidi overrides, zero-width marks). */
const UNPRINTABLE = /[\p{Cc}\p{Cf}]/u;
const UNPRINTABLE_ALL = /[\p{Cc}\p{Cf}]/gu;

/** Why `id` cannot be a client id (without echoing it), or null when it can. */
export function clientIdProblem(id: string): string | null {
  if (id.length === 0) return 'the client id is empty';
  const bytes = new TextEncoder().encode(id).length;
  if (bytes > MAX_CLIENT_ID_BYTES) return `the client id is ${bytes} bytes of UTF-8, at most ${MAX_CLIENT_ID_BYTES}`;
  if (UNPRINTABLE.test(id)) return 'the client id holds control or format characters (such as an escape sequence)';
  return null;
}

/** `text` safe for a terminal: every control or format character written as a \u{…} escape. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE_ALL, (c) => `\\u{${(c.codePointAt(0) as number).toString(16)}}`);
}
