// Every committed record is verifiable, whatever engine holds it: round r's record carries SHA-256 over
// its canonical bytes and the hash of round r−1's record (a hash chain), and the state carries the hash
// of its last round's record and a checksum of each of its vectors. A round's record also keeps what the
// round left in the state besides C (the residual and Pro importance entries it changed, with their new
// values), so the state after any intact prefix of rounds is rebuilt bit for bit from the records alone.
// Both stores seal a commit and verify a store through this module only.
import { createHash } from 'node:crypto';
import type { FederationState, FederationStore, RoundAfter, RoundLink, RoundRecord, SparseValues, StateSeal } from './store';
import { errorMessage } from '../protocol/errors';

const VECTORS = ['coefficients', 'residual', 'importanceSum', 'importanceCount'] as const;
type VectorName = (typeof VECTORS)[number];
const VECTOR_WORDS: Record<VectorName, string> = {
  coefficients: 'coefficients C',
  residual: 'residual',
  importanceSum: 'importance sums',
  importanceCount: 'importance counts',
};
const AFTER = ['residual', 'importanceSum', 'importanceCount'] as const;

const bytesOf = (v: Float64Array | Uint32Array): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
/** A float64's bytes, every NaN written as one pattern (JSON and SQL do not keep NaN payloads). */
const f64 = (x: number): Buffer => {
  const b = Buffer.alloc(8);
  if (Number.isNaN(x)) b.writeBigUInt64LE(0x7ff8000000000000n);
  else b.writeDoubleLE(x);
  return b;
};
const text = (s: string): Buffer => {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([u32(b.length), b]);
};

function vectorChecksum(name: VectorName, v: Float64Array): string {
  return createHash('sha256').update(`fedkseed-state-${name}`).update(u32(v.length)).update(bytesOf(v)).digest('hex');
}

function headerChecksum(round: number, k: number, s: Omit<StateSeal, 'header'>): string {
  const h = createHash('sha256').update('fedkseed-state-v1').update(u32(round)).update(u32(k)).update(s.head);
  for (const name of VECTORS) h.update(s[name]);
  return h.digest('hex');
}

/** SHA-256 of a record's canonical bytes: every field but its own hash, the previous record's hash included. */
export function recordHash(record: RoundRecord): string {
  const h = createHash('sha256').update('fedkseed-round-v1').update(u32(record.round)).update(u32(record.change.length)).update(bytesOf(record.change));
  h.update(u32(record.participants.length));
  for (const p of record.participants) h.update(text(p));
  h.update(f64(record.examples)).update(f64(record.lossBefore)).update(f64(record.lossAfter)).update(text(record.committedAt));
  h.update(text(record.link?.prev ?? ''));
  if (record.after) {
    h.update('after');
    for (const name of AFTER)
      h.update(u32(record.after[name].indices.length)).update(bytesOf(record.after[name].indices)).update(bytesOf(record.after[name].values));
    // A record committed before the statistics were kept hashes as it did.
    if (record.after.robust) h.update('robust').update(f64(record.after.robust.absG)).update(f64(record.after.robust.examples));
    if (record.after.sampling !== undefined) h.update('sampling').update(text(record.after.sampling));
  }
  return h.digest('hex');
}

/**
 * Whether `record` was sealed with `expected` before a loss it held was lost in storage: an older server
 * committed ±Infinity losses, which the embedded store writes as JSON's no value and reads back as NaN.
 * Each reading of such a loss is tried, so the record is not taken for damaged (nor dropped by repair).
 */
function sealedWithLostLoss(record: RoundRecord, expected: string): boolean {
  const readings = (x: number): number[] => (Number.isNaN(x) ? [NaN, Infinity, -Infinity] : [x]);
  if (!Number.isNaN(record.lossBefore) && !Number.isNaN(record.lossAfter)) return false;
  for (const lossBefore of readings(record.lossBefore)) {
    for (const lossAfter of readings(record.lossAfter)) if (recordHash({ ...record, lossBefore, lossAfter }) === expected) return true;
  }
  return false;
}

const zeros = (k: number): FederationState => ({
  round: 0,
  coefficients: new Float64Array(k),
  residual: new Float64Array(k),
  importanceSum: new Float64Array(k),
  importanceCount: new Float64Array(k),
});

/** The entries of `next` that differ (bit for bit, −0 and +0 apart) from `prev`. */
function changed(prev: Float64Array, next: Float64Array): SparseValues {
  const at: number[] = [];
  next.forEach((x, j) => !Object.is(x, prev[j]) && at.push(j));
  return { indices: Uint32Array.from(at), values: Float64Array.from(at, (j) => next[j]) };
}

/** What the round from `prev` to `next` changed besides C. */
export function afterOf(prev: FederationState | null, next: FederationState): RoundAfter {
  const p = prev ?? zeros(next.coefficients.length);
  return {
    residual: changed(p.residual, next.residual),
    importanceSum: changed(p.importanceSum, next.importanceSum),
    importanceCount: changed(p.importanceCount, next.importanceCount),
  };
}

/** The seal of `state` whose last round's record has hash `head`. */
export function stateSeal(state: FederationState, head: string): StateSeal {
  const sums = {
    head,
    coefficients: vectorChecksum('coefficients', state.coefficients),
    residual: vectorChecksum('residual', state.residual),
    importanceSum: vectorChecksum('importanceSum', state.importanceSum),
    importanceCount: vectorChecksum('importanceCount', state.importanceCount),
  };
  return { ...sums, header: headerChecksum(state.round, state.coefficients.length, sums) };
}

/**
 * A commit sealed: the record with what the round changed besides C (unless the committer gave it, or
 * null for a round whose history is unknown) and its link to the record before; the state with its seal.
 * `prev` is the stored state before the commit; `loadRound` is needed only when that state has no seal.
 */
export async function sealCommit(
  prev: FederationState | null,
  next: FederationState,
  record: RoundRecord,
  loadRound: (round: number) => Promise<RoundRecord | null>,
): Promise<{ state: FederationState; record: RoundRecord }> {
  let prevHash = '';
  if (prev && prev.round > 0) {
    if (prev.seal) prevHash = prev.seal.head;
    else {
      const before = await loadRound(prev.round);
      if (before) prevHash = recordHash(before);
    }
  }
  const after = record.after === undefined ? afterOf(prev, next) : record.after;
  const unsealed: RoundRecord = { ...record, after, link: { prev: prevHash, hash: '' } };
  const hash = recordHash(unsealed);
  const { seal: _seal, ...bare } = next;
  return { state: { ...bare, seal: stateSeal(next, hash) }, record: { ...unsealed, link: { prev: prevHash, hash } } };
}

/** The state after `record`'s round, from the state before it: C plus the round's change, the rest as the round left it. */
export function applyRound(prev: FederationState, record: RoundRecord): FederationState {
  if (!record.after) throw new Error(`round ${record.round}'s record holds no history of the residual and importance`);
  const after = record.after;
  const set = (v: Float64Array, s: SparseValues): Float64Array => {
    const out = new Float64Array(v);
    s.indices.forEach((j, n) => (out[j] = s.values[n]));
    return out;
  };
  return {
    round: record.round,
    coefficients: prev.coefficients.map((c, j) => c + record.change[j]),
    residual: set(prev.residual, after.residual),
    importanceSum: set(prev.importanceSum, after.importanceSum),
    importanceCount: set(prev.importanceCount, after.importanceCount),
  };
}

/** The zero state of a federation with K seeds (before round 1). */
export const initialState = zeros;

// ---- Stored forms --------------------------------------------------------------------------------------

/** A stored seal's size: six SHA-256s. */
export const STATE_SEAL_BYTES = 6 * 32;

/** The seal as 192 bytes (head, four vector checksums, header). */
export function encodeStateSeal(seal: StateSeal): Buffer {
  return Buffer.concat([seal.head, ...VECTORS.map((v) => seal[v]), seal.header].map((h) => (h === '' ? Buffer.alloc(32) : Buffer.from(h, 'hex'))));
}

export function decodeStateSeal(b: Buffer): StateSeal {
  if (b.length !== STATE_SEAL_BYTES) throw new Error(`the state's seal is ${b.length} bytes, expected ${STATE_SEAL_BYTES}`);
  const at = (i: number): string => b.subarray(32 * i, 32 * i + 32).toString('hex');
  const head = at(0) === '0'.repeat(64) ? '' : at(0);
  return { head, coefficients: at(1), residual: at(2), importanceSum: at(3), importanceCount: at(4), header: at(5) };
}

/** A round's history as JSON: each vector's changed entries as base64 (uint32 indices, float64 values). */
export interface AfterJson {
  readonly residual: { readonly indices: string; readonly values: string };
  readonly importanceSum: { readonly indices: string; readonly values: string };
  readonly importanceCount: { readonly indices: string; readonly values: string };
  /** The round's statistics (robust.ts), as float64 bytes in base64 (absG, examples): bit for bit. */
  readonly robust?: string;
  /** The round's sampling key, hex. */
  readonly sampling?: string;
}

export function afterToJson(after: RoundAfter): AfterJson {
  const one = (s: SparseValues) => ({ indices: bytesOf(s.indices).toString('base64'), values: bytesOf(s.values).toString('base64') });
  const robust = after.robust ? { robust: bytesOf(Float64Array.of(after.robust.absG, after.robust.examples)).toString('base64') } : {};
  const sampling = after.sampling === undefined ? {} : { sampling: after.sampling };
  return { residual: one(after.residual), importanceSum: one(after.importanceSum), importanceCount: one(after.importanceCount), ...robust, ...sampling };
}

/** Decodes and checks a round's history against K; throws naming what is wrong. */
export function afterFromJson(json: unknown, k: number, round: number): RoundAfter {
  const bad = (why: string) => new Error(`round ${round}'s history ${why}`);
  if (typeof json !== 'object' || json === null) throw bad('is not an object');
  const one = (name: (typeof AFTER)[number]): SparseValues => {
    const s = (json as Record<string, unknown>)[name] as { indices?: unknown; values?: unknown } | undefined;
    if (typeof s?.indices !== 'string' || typeof s.values !== 'string') throw bad(`has no valid ${name}`);
    const ib = Buffer.from(s.indices, 'base64');
    const vb = Buffer.from(s.values, 'base64');
    if (ib.length % 4 !== 0 || vb.length !== (ib.length / 4) * 8) throw bad(`has ${name} with ${ib.length / 4} indices and ${vb.length / 8} values`);
    const indices = new Uint32Array(ib.length / 4);
    Buffer.from(indices.buffer).set(ib);
    const values = new Float64Array(vb.length / 8);
    Buffer.from(values.buffer).set(vb);
    for (let n = 0; n < indices.length; n++)
      if (indices[n] >= k || (n > 0 && indices[n] <= indices[n - 1])) throw bad(`names ${name} entry ${indices[n]} out of order or beyond K = ${k}`);
    return { indices, values };
  };
  const sampling = (json as Record<string, unknown>).sampling;
  if (sampling !== undefined && (typeof sampling !== 'string' || !/^[0-9a-f]{64}$/.test(sampling))) throw bad('has no valid sampling key');
  const history = {
    residual: one('residual'),
    importanceSum: one('importanceSum'),
    importanceCount: one('importanceCount'),
    ...(sampling === undefined ? {} : { sampling }),
  };
  const robust = (json as Record<string, unknown>).robust;
  if (robust === undefined) return history;
  const rb = typeof robust === 'string' ? Buffer.from(robust, 'base64') : Buffer.alloc(0);
  if (rb.length !== 16) throw bad('has no valid statistics');
  const [absG, examples] = [rb.readDoubleLE(0), rb.readDoubleLE(8)];
  if (!(absG >= 0 && examples >= 0 && Number.isFinite(absG) && Number.isFinite(examples)))
    throw bad(`has statistics ${absG}, ${examples} that are not finite non-negative numbers`);
  return { ...history, robust: { absG, examples } };
}

/** The link as stored: undefined when the record has none (written before records were chained). */
export function linkFromJson(json: unknown, round: number): RoundLink | undefined {
  if (json === undefined || json === null) return undefined;
  const l = json as { prev?: unknown; hash?: unknown };
  const hex = (x: unknown): x is string => typeof x === 'string' && /^([0-9a-f]{64})?$/.test(x);
  if (!hex(l.prev) || !hex(l.hash)) throw new Error(`round ${round}'s chain link is not two hashes`);
  return { prev: l.prev, hash: l.hash };
}

// ---- Verification --------------------------------------------------------------------------------------

export interface ChainReport {
  /** The state's round, or the last record found when the state cannot be read. */
  readonly round: number;
  /** Rounds 1..intact have readable records, each matching its hash and linked to the one before. */
  readonly intact: number;
  /** What is damaged, in words ("round 17's record does not match its hash"); empty: none found. */
  readonly damage: readonly string[];
  /** The state's vectors whose checksum fails (empty when the state has no seal or cannot be read). */
  readonly damagedVectors: readonly VectorName[];
  /** Whether the state could be read and its round and chain head are its own (checksums pass). */
  readonly stateReadable: boolean;
  /** Rounds whose records carry no hash (written before records were chained): checked by nothing here. */
  readonly unsealedRounds: number;
  /** Whether every record 1..intact keeps its round's history, so the state at `intact` can be rebuilt. */
  readonly historyComplete: boolean;
}

type ChainSource = Pick<FederationStore, 'loadState' | 'loadRound'>;

/** Walks the chain from round 1 and checks the state's seal; names every damage found, changes nothing. */
export async function verifyChain(store: ChainSource): Promise<ChainReport> {
  const damage: string[] = [];
  const damagedVectors: VectorName[] = [];
  let state: FederationState | null = null;
  let stateReadable = true;
  try {
    state = await store.loadState();
  } catch (err) {
    stateReadable = false;
    damage.push(`the state cannot be read (${errorMessage(err)})`);
  }
  const top = state?.round;
  let intact = 0;
  let prevHash = '';
  let unsealedRounds = 0;
  let historyComplete = true;
  let lastFound = 0;
  let sawLink = false;
  for (let r = 1; top === undefined || r <= top; r++) {
    let record: RoundRecord | null;
    try {
      record = await store.loadRound(r);
    } catch (err) {
      damage.push(`round ${r}'s record cannot be read (${errorMessage(err)})`);
      break;
    }
    if (!record) {
      if (top !== undefined) damage.push(`round ${r}'s record is missing`);
      break;
    }
    lastFound = r;
    if (record.round !== r) {
      damage.push(`round ${r}'s record names round ${record.round}`);
      break;
    }
    let hash = recordHash(record);
    if (record.link) {
      sawLink = true;
      if (hash !== record.link.hash && !sealedWithLostLoss(record, record.link.hash)) {
        damage.push(`round ${r}'s record does not match its hash (its content was altered or damaged)`);
        break;
      }
      hash = record.link.hash;
      if (record.link.prev !== prevHash) {
        damage.push(
          r === 1
            ? `round 1's record does not start the chain`
            : `round ${r}'s record does not follow round ${r - 1}'s in the chain (a record was replaced or damaged)`,
        );
        break;
      }
    } else if (sawLink) {
      damage.push(`round ${r}'s record carries no hash though round ${r - 1}'s does (damaged)`);
      break;
    } else {
      unsealedRounds++;
    }
    if (!record.after) historyComplete = false;
    prevHash = hash;
    intact = r;
  }
  if (top !== undefined && damage.length === 0) {
    try {
      if (await store.loadRound(top + 1)) damage.push(`round ${top + 1}'s record lies beyond the state's round ${top} (the state was rolled back or damaged)`);
    } catch {
      damage.push(`a record beyond the state's round ${top} cannot be read`);
    }
  }
  if (state?.seal) {
    const seal = state.seal;
    const k = state.coefficients.length;
    if (headerChecksum(state.round, k, seal) !== seal.header) {
      stateReadable = false;
      damage.push(`the state's seal (its round ${state.round}, chain head and vector checksums) fails its own checksum`);
    } else {
      for (const name of VECTORS) {
        if (vectorChecksum(name, state[name]) !== seal[name]) {
          damagedVectors.push(name);
          damage.push(`the state's ${VECTOR_WORDS[name]} vector fails its checksum`);
        }
      }
      if (intact === state.round && seal.head !== prevHash)
        damage.push(`the state does not name round ${state.round}'s record as its last (a record or the state was replaced)`);
    }
  } else if (state && sawLink) {
    stateReadable = false;
    damage.push(`the state carries no checksums though its rounds do (damaged)`);
  }
  return { round: top ?? lastFound, intact, damage, damagedVectors, stateReadable, unsealedRounds, historyComplete };
}

/** One line for an operator: what is damaged, and what the history keeps. */
export function describeDamage(report: ChainReport): string {
  const kept =
    report.intact === 0
      ? 'no round is intact'
      : report.intact >= report.round
        ? `rounds 1..${report.intact} are intact`
        : `rounds 1..${report.intact} are intact, ${report.intact + 1}..${report.round} are not`;
  return `${report.damage.join('; ')}; ${kept}`;
}
