// What a closed round commits, computed from its uploads alone (no I/O): each upload bounded by the
// scales kept across rounds (robust.ts), aggregated with error feedback, uploads that would push the
// coefficients out of the replicas' exact range left out one at a time, losses that would not be finite
// left out of the means. The result is a commit to write or a refusal; the effects name every client
// whose upload was bounded or left out.
import {
  COEFFICIENT_SCALE,
  EXACT_LIMIT,
  maxTableValue,
  type Generator,
  probabilitiesFromLevels,
  quantizeImportance,
  sumAbs,
  type QuantizedProbabilities,
  type UploadMessage,
} from '../../protocol';
import { quantizeWithFeedback, robustAggregate } from '../aggregate';
import { accumulateImportance, importanceOf } from '../importance';
import { boundRound, repeatCap, type RoundStatistics } from '../robust';
import type { FederationState } from '../store';
import type { Effect } from './effects';
import type { EngineState } from './state';

export type CloseOutcome =
  | {
      readonly kind: 'commit';
      readonly next: FederationState;
      readonly change: Float64Array;
      readonly exponent: number;
      readonly statistics: RoundStatistics;
      readonly participants: readonly string[];
      readonly examples: number;
      readonly lossBefore: number;
      readonly lossAfter: number;
    }
  /** `afterReset`: found once the range check passed, which ended the run of refusals before it (as it always has). */
  | { readonly kind: 'refuse'; readonly clients: readonly string[]; readonly reason: string; readonly afterReset: boolean };

/** The seed probabilities of the next round (Pro), from the committed importance; null with uniform sampling. */
export function currentProbabilities(s: EngineState): QuantizedProbabilities | null {
  if (s.rules.config.sampling !== 'pro') return null;
  return quantizeImportance(importanceOf(s.committed.importanceSum, s.committed.importanceCount), s.rules.probabilityBits);
}

/** The most times one seed may appear in an upload of the open round: from τ and the largest p the round was sent. */
function repeatCapOf(s: EngineState): number {
  const probabilities = currentProbabilities(s);
  const pMax = probabilities ? probabilitiesFromLevels(probabilities).reduce((m, p) => Math.max(m, p), 0) : 1 / s.rules.config.k;
  return repeatCap(s.rules.config.tau, pMax, s.rules.robustness.repeatSlack);
}

/**
 * A client that last synced at round s applies C_r − C_s to a replica holding C_s; every value it
 * computes stays exact while max|value|·(Σ|C_s| + Σ|C_r − C_s|) < 2^53 (docs/zo-engine.md). Σ|C_s| +
 * Σ|C_r − C_s| ≤ 2·peak + Σ|C_r|, so this check covers every client, whenever it last synced.
 */
export function withinExactRange(peakSumAbs: number, next: Float64Array, generator: Generator = 'iid'): boolean {
  const peak = Math.max(peakSumAbs, sumAbs(next));
  return maxTableValue(generator) * (2 * peak + sumAbs(next)) < EXACT_LIMIT;
}

/** The first value of a commit that is not a finite number, in words, or null. */
function nonFiniteValue(state: FederationState, examples: number): string | null {
  if (!Number.isFinite(examples)) return 'example count';
  for (const [name, v] of [
    ['coefficients', state.coefficients],
    ['residual', state.residual],
    ['importance sums', state.importanceSum],
    ['importance counts', state.importanceCount],
  ] as const) {
    if (!v.every(Number.isFinite)) return name;
  }
  return null;
}

const sumAbsG = (pairs: readonly { readonly g: number }[]): number => pairs.reduce((s, p) => s + Math.abs(p.g), 0);

/**
 * The round's mean losses over its kept uploads (NaN: none reported). Each upload's sums are finite, but
 * their total need not be (two of 1.7e308): while a mean is not finite, the loss report with the largest
 * sums is left out of it, naming its client (its g still count: the losses are only reported).
 */
function roundLosses(
  round: number,
  kept: readonly { readonly id: string; readonly upload: UploadMessage }[],
  effects: Effect[],
): { lossBefore: number; lossAfter: number } {
  let reporting = [...kept];
  /** The mean over the reporting uploads: NaN when none reports a count, null when it is not finite. */
  const mean = (sum: (u: UploadMessage) => number, count: (u: UploadMessage) => number): number | null => {
    const n = reporting.reduce((s, x) => s + count(x.upload), 0);
    if (n === 0) return NaN;
    const v = reporting.reduce((s, x) => s + sum(x.upload), 0) / n;
    return Number.isFinite(v) ? v : null;
  };
  const size = (u: UploadMessage): number => Math.max(Math.abs(u.lossBeforeSum), Math.abs(u.lossAfterSum));
  for (;;) {
    const lossBefore = mean(
      (u) => u.lossBeforeSum,
      (u) => u.lossBeforeCount,
    );
    const lossAfter = mean(
      (u) => u.lossAfterSum,
      (u) => u.lossAfterCount,
    );
    if (lossBefore !== null && lossAfter !== null) return { lossBefore, lossAfter };
    const worst = reporting.reduce((a, b) => (size(b.upload) > size(a.upload) ? b : a));
    reporting = reporting.filter((x) => x !== worst);
    const reason = `its loss sums (${worst.upload.lossBeforeSum.toExponential(2)}, ${worst.upload.lossAfterSum.toExponential(2)}) would make the round's mean loss infinite: its loss report is left out (its g count, bounded as any other)`;
    effects.push({ kind: 'log', level: 'warn', fields: { event: 'loss_excluded', round, clientId: worst.id, reason } });
    effects.push({ kind: 'emit', name: 'lossExcluded', payload: { round, clientId: worst.id, reason } });
  }
}

/** What round `round` commits from `uploads` (at least one, in arrival order) of its `sampled` clients. */
export function closeRound(
  s: EngineState,
  round: number,
  sampled: number,
  uploads: readonly (readonly [string, UploadMessage])[],
  effects: Effect[],
): CloseOutcome {
  const { config, robustness, mantissaBits } = s.rules;
  const committed = s.committed;
  // Each upload bounded by scales kept across rounds (robust.ts): repeats of a seed beyond what an
  // honest upload holds dropped, |g| clipped, the example claim capped; every client bounded is named.
  const bounds = boundRound(
    { uploads: uploads.map(([, u]) => u), missing: sampled - uploads.length, history: s.statistics, repeatCap: repeatCapOf(s), tau: config.tau },
    robustness,
  );
  bounds.uploads.forEach((b, i) => {
    const countedExamples = b.contribution.examples;
    if (b.clipped === 0 && b.scaledBy === 1 && b.repeatsDropped === 0 && countedExamples === b.claimedExamples) return;
    const e = {
      round,
      clientId: uploads[i][0],
      clipped: b.clipped,
      scaledBy: b.scaledBy,
      repeatsDropped: b.repeatsDropped,
      claimedExamples: b.claimedExamples,
      countedExamples,
      gBound: bounds.gBound,
      normBound: bounds.normBound,
      examplesBound: bounds.examplesBound,
      repeatCap: bounds.repeatCap,
    };
    effects.push({ kind: 'log', level: 'warn', fields: { event: 'upload_bounded', ...e } });
    effects.push({ kind: 'emit', name: 'uploadBounded', payload: e });
  });
  let kept = uploads.map(([id, upload], i) => ({ id, upload, bounded: bounds.uploads[i].contribution }));
  const aggregate = (list: typeof kept): Float64Array =>
    robustAggregate(
      list.map((x) => x.bounded),
      config.k,
      config.weighting,
      robustness.seedMedianClients,
    );
  let q = quantizeWithFeedback(aggregate(kept), committed.residual, mantissaBits);
  let coefficients = committed.coefficients.map((c, j) => c + q.change[j]);
  // A round that would leave the exact range: leave out the upload with the largest Σ|g| one at a
  // time, naming its client, while others remain; with none left the round is refused.
  while (!withinExactRange(s.peakSumAbs, coefficients, config.generator) && kept.length > 1) {
    const worst = kept.reduce((a, b) => (sumAbsG(b.bounded.pairs) > sumAbsG(a.bounded.pairs) ? b : a));
    kept = kept.filter((x) => x !== worst);
    const reason = `its g (Σ|g| ≈ ${sumAbsG(worst.bounded.pairs).toExponential(2)}) would push the coefficients out of the replicas' exact range`;
    effects.push({ kind: 'log', level: 'error', fields: { event: 'upload_excluded', round, clientId: worst.id, reason } });
    effects.push({ kind: 'emit', name: 'uploadExcluded', payload: { round, clientId: worst.id, reason } });
    q = quantizeWithFeedback(aggregate(kept), committed.residual, mantissaBits);
    coefficients = committed.coefficients.map((c, j) => c + q.change[j]);
  }
  if (!withinExactRange(s.peakSumAbs, coefficients, config.generator)) {
    const reason = `its coefficients would leave the replicas' exact range (Σ|A_j| ≈ ${(sumAbs(coefficients) / COEFFICIENT_SCALE).toExponential(2)}); the training diverges: lower η`;
    return { kind: 'refuse', clients: kept.map((x) => x.id), reason, afterReset: false };
  }
  const importanceSum = new Float64Array(committed.importanceSum);
  const importanceCount = new Float64Array(committed.importanceCount);
  for (const x of kept) accumulateImportance(importanceSum, importanceCount, x.bounded.pairs);
  const examples = kept.reduce((sum, x) => sum + x.bounded.examples, 0);
  const { lossBefore, lossAfter } = roundLosses(round, kept, effects);
  const participants = kept.map((x) => x.id);
  const next: FederationState = { round, coefficients, residual: q.residual, importanceSum, importanceCount };
  // Nothing that is not a finite number is committed (a store cannot hold it and its hash would fail).
  const nonFinite = nonFiniteValue(next, examples);
  if (nonFinite !== null) return { kind: 'refuse', clients: participants, reason: `its ${nonFinite} would not be a finite number`, afterReset: true };
  return { kind: 'commit', next, change: q.change, exponent: q.exponent, statistics: bounds.statistics, participants, examples, lossBefore, lossAfter };
}
