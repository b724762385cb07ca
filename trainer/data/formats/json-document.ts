// Locates the direct children of a JSON array or object by character offset, so a whole-file JSON
// dataset (Alpaca .json, Natural Instructions tasks) can report a bad element by its line number and
// parse one element at a time instead of building the whole document twice.

export interface JsonChild {
  /** Object key, for children of an object. */
  readonly key?: string;
  /** Offsets of the child's value: text.slice(start, end) is its JSON. */
  readonly start: number;
  readonly end: number;
}

export class JsonScanError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

function skipWs(text: string, i: number): number {
  while (i < text.length && WS.has(text.charCodeAt(i))) i++;
  return i;
}

/** Offset just past the string starting at text[i] === '"'. */
function skipString(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 0x5c)
      j++; // backslash: skip the escaped character
    else if (c === 0x22) return j + 1;
  }
  throw new JsonScanError('unterminated string', i);
}

/** Offset just past the value starting at i (no validation of scalars: JSON.parse does that later). */
function skipValue(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return skipString(text, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const d = text[j];
      if (d === '"') j = skipString(text, j) - 1;
      else if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') {
        depth--;
        if (depth === 0) return j + 1;
      }
    }
    throw new JsonScanError(`unclosed ${c}`, i);
  }
  let j = i;
  while (j < text.length && !WS.has(text.charCodeAt(j)) && !',]}'.includes(text[j])) j++;
  if (j === i) throw new JsonScanError(`expected a value, found ${JSON.stringify(text[i] ?? 'end of file')}`, i);
  return j;
}

export interface JsonContainer {
  readonly type: 'array' | 'object';
  readonly children: JsonChild[];
  /** Offset just past the closing bracket. */
  readonly end: number;
}

/** Children of the array or object whose opening bracket is at `start` (after whitespace). */
export function jsonChildren(text: string, start: number): JsonContainer {
  let i = skipWs(text, start);
  const open = text[i];
  if (open !== '[' && open !== '{') throw new JsonScanError('expected an array or an object', i);
  const type = open === '[' ? 'array' : 'object';
  const close = open === '[' ? ']' : '}';
  const out: JsonChild[] = [];
  i = skipWs(text, i + 1);
  if (text[i] === close) return { type, children: out, end: i + 1 };
  for (;;) {
    let key: string | undefined;
    if (open === '{') {
      if (text[i] !== '"') throw new JsonScanError('expected a key', i);
      const keyEnd = skipString(text, i);
      key = JSON.parse(text.slice(i, keyEnd)) as string;
      i = skipWs(text, keyEnd);
      if (text[i] !== ':') throw new JsonScanError('expected ":"', i);
      i = skipWs(text, i + 1);
    }
    const end = skipValue(text, i);
    out.push(key === undefined ? { start: i, end } : { key, start: i, end });
    i = skipWs(text, end);
    if (text[i] === ',') {
      i = skipWs(text, i + 1);
      continue;
    }
    if (text[i] === close) return { type, children: out, end: i + 1 };
    throw new JsonScanError(`expected "," or "${close}"`, i);
  }
}

/** The top-level container of a whole document; only whitespace may follow it. */
export function jsonDocument(text: string): JsonContainer {
  const doc = jsonChildren(text, 0);
  const rest = skipWs(text, doc.end);
  if (rest < text.length) throw new JsonScanError('unexpected content after the end of the document', rest);
  return doc;
}

/** Maps character offsets to 1-based line numbers. */
export class LineIndex {
  private readonly starts: number[] = [0];

  constructor(text: string) {
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) this.starts.push(i + 1);
  }

  lineOf(offset: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }
}
