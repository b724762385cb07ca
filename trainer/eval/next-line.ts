// Exact match of the next line, for code: a held-out window is cut at a line start past its middle; the
// model, given everything before (the line's indentation included), completes the line greedily, and
// the completion counts when it equals the line (trailing whitespace aside).

export interface NextLineCase {
  /** Text up to the line's first non-blank character. */
  readonly prompt: string;
  /** The rest of the line, without its line break. */
  readonly target: string;
}

/** The case of one window's text: the first non-blank line starting past the middle, with a line after it (so it is whole). */
export function nextLineCase(text: string): NextLineCase | null {
  let start = text.indexOf('\n', Math.floor(text.length / 2));
  while (start >= 0) {
    const end = text.indexOf('\n', start + 1);
    if (end < 0) return null;
    const line = text.slice(start + 1, end);
    const indent = /^[ \t]*/.exec(line)?.[0].length ?? 0;
    if (line.trim() !== '') return { prompt: text.slice(0, start + 1 + indent), target: line.slice(indent).trimEnd() };
    start = end;
  }
  return null;
}

/** Whether a completion is the target line: equal up to trailing whitespace, only its first line read. */
export function exactLineMatch(completion: string, target: string): boolean {
  const first = completion.split('\n', 1)[0];
  return first.trimEnd() === target.trimEnd();
}
