// Where a completion ends in the text it generated: at the end of the line (the first line break after
// some text: a completion may start on the next line), at the end of the block (a blank line, or a line
// indented less than the line the cursor is on), or only at the token limit.

export type StopRule = 'line' | 'block' | 'none';

/** Leading whitespace of the last line of `prefix`: the indentation a block completion stays within. */
export function cursorIndent(prefix: string): string {
  const line = prefix.slice(prefix.lastIndexOf('\n') + 1);
  return /^[ \t]*/.exec(line)?.[0] ?? '';
}

/**
 * Where the completion `text` ends under `rule` (an index into it), or -1 when it has not ended yet.
 * `indent`: the cursor line's indentation (block rule).
 */
export function stopIndex(text: string, rule: StopRule, indent = ''): number {
  if (rule === 'none') return -1;
  if (rule === 'line') {
    const firstText = text.search(/\S/);
    if (firstText < 0) return -1;
    return text.indexOf('\n', firstText);
  }
  // Block: lines after the first are kept while they are not blank and are indented at least as deep.
  let start = text.indexOf('\n');
  // A line break before any text starts the block on the next line.
  if (start >= 0 && text.slice(0, start).trim() === '') start = text.indexOf('\n', start + 1);
  while (start >= 0) {
    const end = text.indexOf('\n', start + 1);
    if (end < 0) return -1; // the line is still being written
    const line = text.slice(start + 1, end);
    if (line.trim() === '' || leading(line) < indent.length) return start;
    start = end;
  }
  return -1;
}

function leading(line: string): number {
  return /^[ \t]*/.exec(line)?.[0].length ?? 0;
}
