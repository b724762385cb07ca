// Rouge-L exactly as the pltrdy `rouge` 1.0.1 Python package computes it with its defaults
// (Rouge().get_scores(hyp, ref)[0]['rouge-l'], exclusive=True), which is what the FedKSeed paper
// reports:
//   * sentences: text.split('.'), empty pieces dropped, each piece's whitespace runs collapsed to one
//     space (Python str.split() / ' '.join); a whitespace-only piece becomes the sentence '';
//   * words: each sentence split on ' ' (so '' is a word of the empty sentence); case-sensitive,
//     no stemming, punctuation other than '.' stays in the words;
//   * m, n: numbers of *distinct* words in reference and hypothesis;
//   * for each reference sentence r_i and each hypothesis sentence c_j, one LCS of (r_i, c_j) is
//     rebuilt with the package's tie-breaking; the LCS words go into one set shared by all
//     reference sentences; the overlap is that set's final size;
//   * R = overlap/m, P = overlap/n, F = 2·(P·R)/(P + R + 1e-8).
// An empty hypothesis or reference (no sentence at all) makes the package raise ValueError; the
// FedKSeed evaluation scores that 0, and so does rougeL().

export interface RougeScore {
  readonly f: number;
  readonly p: number;
  readonly r: number;
}

/** Python's str.isspace() characters (JS \s differs: it has U+FEFF, lacks U+001C–U+001F, U+0085). */
// eslint-disable-next-line no-control-regex -- U+001C..U+001F are whitespace to Python
const PY_WHITESPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/** `[" ".join(s.split()) for s in text.split(".") if len(s) > 0]` */
export function rougeSentences(text: string): string[] {
  return text
    .split('.')
    .filter((s) => s.length > 0)
    .map((s) =>
      s
        .split(PY_WHITESPACE)
        .filter((w) => w !== '')
        .join(' '),
    );
}

function words(sentences: readonly string[]): string[] {
  return sentences.flatMap((s) => s.split(' '));
}

/** One LCS of x and y, rebuilt from the end like the package's _recon_lcs (ties move along y). */
export function reconLcs(x: readonly string[], y: readonly string[]): string[] {
  const n = x.length;
  const m = y.length;
  const w = m + 1;
  const table = new Int32Array((n + 1) * w);
  for (let i = 1; i <= n; i++) {
    for (let j = 1; j <= m; j++) {
      table[i * w + j] = x[i - 1] === y[j - 1] ? table[(i - 1) * w + j - 1] + 1 : Math.max(table[(i - 1) * w + j], table[i * w + j - 1]);
    }
  }
  const out: string[] = [];
  let i = n;
  let j = m;
  while (i > 0 && j > 0) {
    if (x[i - 1] === y[j - 1]) {
      out.push(x[i - 1]);
      i--;
      j--;
    } else if (table[(i - 1) * w + j] > table[i * w + j - 1]) i--;
    else j--;
  }
  return out.reverse();
}

/** Summary-level Rouge-L of the package, or undefined where the package raises ValueError. */
export function rougeLScore(hypothesis: string, reference: string): RougeScore | undefined {
  const hyp = rougeSentences(hypothesis);
  const ref = rougeSentences(reference);
  if (hyp.length === 0 || ref.length === 0) return undefined;
  const m = new Set(words(ref)).size;
  const n = new Set(words(hyp)).size;
  const union = new Set<string>();
  const hypWords = hyp.map((s) => s.split(' '));
  for (const refSentence of ref) {
    const refWords = refSentence.split(' ');
    for (const h of hypWords) for (const word of reconLcs(refWords, h)) union.add(word);
  }
  const overlap = union.size;
  const r = overlap / m;
  const p = overlap / n;
  return { f: 2.0 * ((p * r) / (p + r + 1e-8)), p, r };
}

/** The F-score the FedKSeed paper reports: 0 for an empty hypothesis or reference. */
export function rougeL(hypothesis: string, reference: string): number {
  if (hypothesis.length === 0) return 0;
  return rougeLScore(hypothesis, reference)?.f ?? 0;
}
