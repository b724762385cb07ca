// report.html's "What fine-tuning changed" section: each held-out window with every token shaded by how
// its loss moved from the base model to the final one (green fell, red rose, stronger where it moved
// more; the tokens that moved most are outlined), and both models' completions of its first half.
// Colour is never the only signal: each token's title gives its losses, and the section lists the tokens
// that moved most in words.
import { escapeHtml } from './svg-chart';
import type { TextSample, TextSamplesReport } from './text-samples';

/** Tokens named and outlined per window. */
const MOST_MOVED = 5;

/** Loss change of token i (pieces[i], i ≥ 1), or null without a final measure. */
const changeOf = (s: TextSample, i: number): number | null => (s.final ? s.final.tokenLoss[i - 1] - s.base.tokenLoss[i - 1] : null);

/** The indexes of the tokens whose loss moved most, largest first. */
export function mostMoved(s: TextSample, count = MOST_MOVED): number[] {
  if (!s.final) return [];
  return s.pieces
    .map((_, i) => i)
    .filter((i) => i >= 1)
    .sort((a, b) => Math.abs(changeOf(s, b) as number) - Math.abs(changeOf(s, a) as number))
    .slice(0, count);
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const signed = (x: number): string => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(2)}`;
/** A token as it reads in a sentence: whitespace made visible. */
const shown = (piece: string): string => JSON.stringify(piece.replace(/\n/g, '⏎')).slice(1, -1);

function windowHtml(s: TextSample): string {
  const moved = new Set(mostMoved(s));
  let largest = 0;
  for (let i = 1; i < s.pieces.length; i++) largest = Math.max(largest, Math.abs(changeOf(s, i) ?? 0));
  const spans = s.pieces.map((piece, i) => {
    const text = escapeHtml(piece);
    const cls = i < s.promptTokens ? 'tok prompt' : 'tok';
    if (i === 0) return `<span class="${cls}">${text}</span>`;
    const base = s.base.tokenLoss[i - 1];
    const change = changeOf(s, i);
    if (change === null) return `<span class="${cls}" title="loss ${base.toFixed(2)} nats">${text}</span>`;
    const strength = largest > 0 ? Math.min(1, Math.abs(change) / largest) * 0.55 : 0;
    const colour = change < 0 ? `rgba(44,160,44,${strength.toFixed(3)})` : `rgba(214,39,40,${strength.toFixed(3)})`;
    const title = `loss ${base.toFixed(2)} → ${(base + change).toFixed(2)} nats (${signed(change)})`;
    return `<span class="${cls}${moved.has(i) ? ' moved' : ''}" style="background:${colour}" title="${escapeHtml(title)}">${text}</span>`;
  });
  return `<pre class="window">${spans.join('')}</pre>`;
}

function sampleHtml(s: TextSample, round: number): string {
  const baseMean = mean(s.base.tokenLoss);
  const lines: string[] = [`<div class="sample"><h3>${escapeHtml(s.exampleId)}</h3>`];
  if (s.final) {
    const finalMean = mean(s.final.tokenLoss);
    lines.push(
      `<p>mean loss of its ${s.base.tokenLoss.length} tokens: ${baseMean.toFixed(4)} → ${finalMean.toFixed(4)} (${signed(finalMean - baseMean)} nats)</p>`,
    );
  } else lines.push(`<p>mean loss of its ${s.base.tokenLoss.length} tokens under the base model: ${baseMean.toFixed(4)} (no round was committed)</p>`);
  lines.push(windowHtml(s));
  const moved = mostMoved(s);
  if (moved.length > 0) {
    const named = moved.map((i) => `<code>${escapeHtml(shown(s.pieces[i]))}</code> ${signed(changeOf(s, i) as number)}`).join(', ');
    lines.push(`<p class="moved-list">moved most: ${named}</p>`);
  }
  const prompt = s.pieces.slice(0, s.promptTokens).join('');
  const tail = prompt.split('\n').slice(-3).join('\n');
  lines.push(
    `<table class="completions"><tr><th>prompt (its last lines)</th><th>base model</th><th>${s.final ? `round ${round}` : 'final model'}</th></tr>` +
      `<tr><td><pre>${escapeHtml(tail)}</pre></td><td><pre>${escapeHtml(s.base.completion)}</pre></td><td><pre>${s.final ? escapeHtml(s.final.completion) : '<span class="empty">no round committed</span>'}</pre></td></tr></table>`,
  );
  if (s.final && s.final.completion === s.base.completion)
    lines.push('<p class="empty">the two completions are the same: the greedy choice did not change here</p>');
  lines.push('</div>');
  return lines.join('\n');
}

/** The section, or '' without samples. */
export function renderTextSamples(r: TextSamplesReport | null): string {
  if (!r || r.samples.length === 0) return '';
  const legend =
    r.round > 0
      ? `<p>Each token of ${r.samples.length} held-out windows, shaded by how its loss moved from the base model to round ${r.round}: <span class="tok" style="background:rgba(44,160,44,.55)">fell</span>, <span class="tok" style="background:rgba(214,39,40,.55)">rose</span>; the ${MOST_MOVED} that moved most are outlined, and each token's title gives its losses. The underlined first part is the prompt both models complete below (greedy, so the same every run).</p>`
      : '<p>No round was committed, so only the base model is shown.</p>';
  return `<h2>What fine-tuning changed, in text</h2>\n${legend}\n${r.samples.map((s) => sampleHtml(s, r.round)).join('\n')}`;
}

/** Styles of the section (report.html's one stylesheet includes them). */
export const TEXT_SAMPLES_CSS =
  '.window{white-space:pre-wrap;font:12px/1.6 ui-monospace,monospace;border:1px solid #ddd;padding:8px;background:#fafafa}' +
  '.tok.prompt{text-decoration:underline dotted #999}.tok.moved{outline:1.5px solid #333;outline-offset:-1px}' +
  '.completions td,.completions th{width:33%}.completions pre{white-space:pre-wrap;margin:0;font-size:12px}.moved-list code{background:#f0f0f0;padding:0 3px}';
