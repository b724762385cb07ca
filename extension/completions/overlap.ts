// A suggestion that repeats the whitespace just before the cursor: a tokenizer that writes words with
// their leading space (" count") continues "const count = " with " 42", and accepting it left two spaces.
// Pure, so it is unit-tested on its own.

/**
 * `text` without its start that the text before the cursor already ends with: the longest run of spaces
 * and tabs that ends the cursor's line and also begins the suggestion. Only whitespace: a repeated word
 * may be meant ("a = a" then "a + 1" is "a = aa + 1"), a repeated space never is.
 */
export function trimOverlap(before: string, text: string): string {
  const trailing = /[ \t]*$/.exec(before)?.[0] ?? '';
  for (let k = Math.min(trailing.length, text.length); k > 0; k--) {
    if (text.startsWith(trailing.slice(trailing.length - k))) return text.slice(k);
  }
  return text;
}
