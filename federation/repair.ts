// Rebuilds a damaged store from its round history into an empty one, through the FederationStore
// interface (any engine): the longest prefix of rounds whose records are intact and chained is kept, C
// is the sum of their changes, and the residual and Pro importance come from the rounds' history
// (record-chain.ts), so the rebuilt state is the one the federation had after the last kept round, bit for
// bit. Tokens are carried over as read (the report says they are unchecked); reference digests are not
// (the next clients decide them again). What cannot be rebuilt is named in the report, never silently reset.
import { applyRound, initialState, verifyChain, type ChainReport } from './record-chain';
import type { FederationState, FederationStore, RoundRecord } from './store';
import { errorMessage } from '../protocol/errors';

/** Nothing can be rebuilt (no readable configuration): `message` says so. */
export class RepairImpossibleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RepairImpossibleError';
  }
}

export interface RepairReport {
  /** What verification found in the damaged store. */
  readonly chain: ChainReport;
  /** The round the damaged store was at (or its last readable record). */
  readonly round: number;
  /** Rounds 1..kept are in the repaired store; kept+1..round are lost. */
  readonly kept: number;
  /** The state's quantities rebuilt from the records, in words. */
  readonly rebuilt: readonly string[];
  /** Quantities reset to zero because neither an intact state nor the history holds them. */
  readonly reset: readonly string[];
  /** Anything else not carried over (tokens, digests), with the reason. */
  readonly lost: readonly string[];
  /** What was carried over without a check: tokens, and quantities of a state written before states had checksums. */
  readonly unverified: readonly string[];
}

const EXTRA = ['residual', 'importanceSum', 'importanceCount'] as const;
const WORDS: Record<(typeof EXTRA)[number], string> = {
  residual: 'the error-feedback residual',
  importanceSum: 'the Pro importance sums',
  importanceCount: 'the Pro importance counts',
};

/**
 * Reads what `source` (a damaged store, opened to be read) holds and writes the repaired federation into the
 * empty `target`. `held`: the round the store held before it was damaged, where something else records it
 * (the embedded store's integrity record): rounds beyond what can be read are then reported lost.
 */
export async function repairFromHistory(
  source: Pick<FederationStore, 'loadConfig' | 'loadState' | 'loadRound' | 'loadDigest' | 'listTokens'>,
  target: FederationStore,
  held = 0,
): Promise<RepairReport> {
  let config;
  try {
    config = await source.loadConfig();
  } catch (err) {
    throw new RepairImpossibleError(`its configuration cannot be read (${errorMessage(err)}): nothing can be rebuilt; restore it from a backup`);
  }
  if (!config) throw new RepairImpossibleError('it holds no configuration: nothing can be rebuilt; restore it from a backup');
  const k = config.k;
  const chain = await verifyChain(source);
  const records: RoundRecord[] = [];
  for (let r = 1; r <= chain.intact; r++) {
    const record = await source.loadRound(r);
    if (!record || record.change.length !== k) break;
    records.push(record);
  }
  const kept = records.length;
  const complete = records.every((r) => r.after);
  let stored: FederationState | null = null;
  try {
    stored = await source.loadState();
  } catch {
    // Named in the chain's report already.
  }

  // The state after each kept round: exact with the history; else C alone, the rest added at the end.
  const states: FederationState[] = [];
  let state = initialState(k);
  for (const record of records) {
    state = complete
      ? applyRound(state, record)
      : { ...initialState(k), round: record.round, coefficients: state.coefficients.map((c, j) => c + record.change[j]) };
    states.push(state);
  }
  const rebuilt = kept > 0 ? [`C from the changes of rounds 1..${kept}`] : [];
  const reset: string[] = [];
  const unverified: string[] = [];
  if (kept > 0 && complete) rebuilt.push(...EXTRA.map((v) => `${WORDS[v]} from the rounds' history`));
  else if (kept > 0) {
    // Without the whole history, an intact stored state at the kept round still holds them.
    const last = states[kept - 1];
    const usable = stored !== null && stored.round === kept && chain.stateReadable && stored.coefficients.length === k;
    const extra: Partial<Record<(typeof EXTRA)[number], Float64Array>> = {};
    for (const v of EXTRA) {
      if (usable && stored && !chain.damagedVectors.includes(v)) {
        extra[v] = stored[v];
        if (!stored.seal) unverified.push(`${WORDS[v]} (written before states had checksums)`);
      } else reset.push(WORDS[v]);
    }
    states[kept - 1] = { ...last, ...extra };
  }

  for (const [i, record] of records.entries()) {
    const { link: _link, ...bare } = record;
    await target.commitRound(states[i], { ...bare, after: record.after ?? null });
  }
  const lost: string[] = [];
  // Reference digests are not chained: a damaged one would have every honest client told its replica
  // differs, so none is carried over and the next clients to report decide them again, as for a new round.
  let digests = 0;
  for (let r = 0; r <= Math.max(chain.round, kept); r++) digests += (await source.loadDigest(r).catch(() => 'unreadable')) === null ? 0 : 1;
  if (digests > 0) lost.push(`${digests} reference replica digests (not covered by the chain): the next clients to report decide them again`);
  try {
    const tokens = await source.listTokens();
    for (const t of tokens) await target.putToken(t);
    if (tokens.length > 0) unverified.push(`${tokens.length} tokens (not covered by the chain; check them with fedkseed tokens list)`);
  } catch (err) {
    lost.push(`the tokens (${errorMessage(err)}): issue new ones with fedkseed tokens create`);
  }
  await target.saveConfig(config);
  return { chain, round: Math.max(chain.round, kept, held), kept, rebuilt, reset, lost, unverified };
}

/** The report in lines for an operator. */
export function describeRepair(report: RepairReport): string[] {
  const lines: string[] = [];
  if (report.chain.damage.length > 0) lines.push(`damaged: ${report.chain.damage.join('; ')}`);
  lines.push(
    report.kept === report.round
      ? `kept every round (1..${report.kept}): no round lost`
      : report.kept === 0
        ? `no round could be kept: rounds 1..${report.round} are lost (the repaired store starts the federation again)`
        : `kept rounds 1..${report.kept}; lost ${report.kept + 1 === report.round ? `round ${report.round}` : `rounds ${report.kept + 1}..${report.round}`} (clients that hold them rebuild their replicas from the base model when they rejoin)`,
  );
  if (report.rebuilt.length > 0) lines.push(`rebuilt: ${report.rebuilt.join(', ')}`);
  if (report.reset.length > 0) lines.push(`reset to zero (no intact copy and no history in the records): ${report.reset.join(', ')}`);
  if (report.unverified.length > 0) lines.push(`carried over unverified: ${report.unverified.join(', ')}`);
  for (const l of report.lost) lines.push(`lost: ${l}`);
  return lines;
}
