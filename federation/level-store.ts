// FederationStore on LevelDB (classic-level: prebuilt binaries, no compile step at install). Every
// write uses sync: true, so a returned commit is on disk; a round's state and record go in one batch.
// What it reads back is checked field by field: a damaged or foreign store is refused by name, not
// handed on as whatever JSON it holds.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { open as openFile, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import type { FederationConfig } from '../protocol';
import { parseFederationConfig } from '../protocol/config-schema';
import { damagedTables } from './level-tables';
import { damagedWal, describeWalDamage } from './level-wal';
import { LocalRounds } from './local-rounds';
import { SAMPLING_SECRET_BYTES } from './sampling';
import {
  afterFromJson,
  afterToJson,
  decodeStateSeal,
  describeDamage,
  encodeStateSeal,
  linkFromJson,
  sealCommit,
  STATE_SEAL_BYTES,
  verifyChain,
  type AfterJson,
} from './record-chain';
import { StaleRoundError, type FederationState, type FederationStore, type RoundRecord, type TokenRecord } from './store';
import { errorMessage } from '../protocol/errors';

export type FieldKind = 'string' | 'number' | 'string[]' | readonly string[];

/** `value` as a T when every field of `shape` has its kind (a list of strings: one of them), else an error naming the first that does not. */
export function checked<T>(value: unknown, shape: { readonly [K in keyof T]-?: FieldKind }, what: string): T {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`the store's ${what} is not an object`);
  const record = value as Record<string, unknown>;
  for (const [field, kind] of Object.entries(shape) as [string, FieldKind][]) {
    const v = record[field];
    const ok =
      kind === 'string[]'
        ? Array.isArray(v) && v.every((x) => typeof x === 'string')
        : typeof kind === 'string'
          ? typeof v === kind
          : kind.includes(v as string);
    if (!ok) throw new Error(`the store's ${what} has no valid ${field}`);
  }
  return value as T;
}

/** A stored federation configuration: every hyperparameter within its bound; `shape` may be absent (isotropic). */
export function checkedConfig(value: unknown): FederationConfig {
  const parsed = parseFederationConfig(value);
  if (!parsed.ok) throw new Error(`the store's config has no valid ${parsed.error}`);
  return parsed.config;
}

type OptionalTokenField = 'clientId' | 'maxExamples' | 'revokedAt';

const tokenShape = { id: 'string', label: 'string', salt: 'string', hash: 'string', createdAt: 'string' } as const satisfies {
  readonly [K in keyof Omit<TokenRecord, OptionalTokenField>]-?: FieldKind;
};

/** A token record, its optional client identity included. */
export function checkedToken(value: unknown): TokenRecord {
  const record = checked<Omit<TokenRecord, OptionalTokenField>>(value, tokenShape, 'token') as TokenRecord;
  if (record.revokedAt !== undefined && typeof record.revokedAt !== 'string') throw new Error(`the store's token ${record.id} has no valid revokedAt`);
  if (record.clientId !== undefined && typeof record.clientId !== 'string') throw new Error(`the store's token ${record.id} has no valid clientId`);
  if (record.maxExamples !== undefined && !(Number.isSafeInteger(record.maxExamples) && record.maxExamples > 0))
    throw new Error(`the store's token ${record.id} has no valid maxExamples`);
  return record;
}

const roundKey = (r: number): string => `round/${r.toString().padStart(10, '0')}`;
const digestKey = (r: number): string => `digest/${r.toString().padStart(10, '0')}`;

function f64ToBuffer(v: Float64Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function bufferToF64(b: Buffer, offset: number, k: number): Float64Array {
  const out = new Float64Array(k);
  Buffer.from(out.buffer).set(b.subarray(offset, offset + k * 8));
  return out;
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new Error(`the store's ${what} is not JSON: ${errorMessage(err)}`, { cause: err });
  }
}

function encodeState(s: FederationState): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(s.round, 0);
  head.writeUInt32LE(s.coefficients.length, 4);
  const seal = s.seal ? [encodeStateSeal(s.seal)] : [];
  return Buffer.concat([head, f64ToBuffer(s.coefficients), f64ToBuffer(s.residual), f64ToBuffer(s.importanceSum), f64ToBuffer(s.importanceCount), ...seal]);
}

function decodeState(b: Buffer): FederationState {
  const round = b.readUInt32LE(0);
  const k = b.readUInt32LE(4);
  // A state written before states were sealed has no seal after its vectors.
  const sealed = b.length === 8 + 32 * k + STATE_SEAL_BYTES;
  if (b.length !== 8 + 4 * 8 * k && !sealed)
    throw new Error(`stored federation state is ${b.length} bytes, expected ${8 + 32 * k + STATE_SEAL_BYTES} for K = ${k}`);
  return {
    ...(sealed ? { seal: decodeStateSeal(b.subarray(8 + 32 * k)) } : {}),
    round,
    coefficients: bufferToF64(b, 8, k),
    residual: bufferToF64(b, 8 + 8 * k, k),
    importanceSum: bufferToF64(b, 8 + 16 * k, k),
    importanceCount: bufferToF64(b, 8 + 24 * k, k),
  };
}

interface StoredRound extends Omit<RoundRecord, 'change' | 'after'> {
  readonly change: string;
  readonly after?: AfterJson;
}

const roundShape = {
  round: 'number',
  change: 'string',
  participants: 'string[]',
  examples: 'number',
  lossBefore: 'number',
  lossAfter: 'number',
  committedAt: 'string',
} as const satisfies { readonly [K in keyof Omit<StoredRound, 'after' | 'link'>]-?: FieldKind };

/** The store's integrity record, beside LevelDB's files (which LevelDB neither reads nor deletes). */
export const INTEGRITY_FILE = 'fedkseed-integrity.json';
const HASH_MODULUS = 1n << 256n;

/** The store is damaged or is not a store: `message` names what and what the operator can do. */
export class StoreDamagedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreDamagedError';
  }
}

/** One entry's share of the content hash: SHA-256 over its key's length, key and value. */
function entryHash(key: string, value: Buffer): bigint {
  const k = Buffer.from(key, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(k.length);
  return BigInt(`0x${createHash('sha256').update(len).update(k).update(value).digest('hex')}`);
}

interface IntegrityRecord {
  /** Σ entryHash over every entry, mod 2^256, in hex. */
  readonly content: string;
  /** The state's round with that content (absent in records written before it was kept). */
  readonly round?: number;
  /** A write in progress: the content once it lands (a crash may leave either). */
  readonly pending?: string;
  readonly pendingRound?: number;
}

/** The round a stored state value is at, or null when it is too short to say. */
const stateRound = (value: Buffer): number | null => (value.length >= 4 ? value.readUInt32LE(0) : null);

interface Scan {
  /** The content hash over what a scan (an iterator, which never consults a table's filter) reads. */
  readonly content: bigint;
  /** The state's round as the scan reads it (0: no state). */
  readonly round: number;
  /** Keys whose read by key (what the server does) disagrees with the scan: a damaged index or filter block. */
  readonly disagree: readonly string[];
}

/**
 * Reads every entry in order and hashes it; with `pointReads`, also reads each key by key, as the server
 * does, and names those whose value differs (LevelDB consults a table's Bloom filter and index only for
 * these, so a damaged one can hide an entry, or serve an older version of it, that a scan reads right).
 */
async function scan(db: ClassicLevel<string, Buffer>, pointReads: boolean): Promise<Scan> {
  let content = 0n;
  let round = 0;
  const disagree: string[] = [];
  let batch: [string, Buffer][] = [];
  const check = async (): Promise<void> => {
    const got = await db.getMany(batch.map(([k]) => k));
    batch.forEach(([k, v], i) => {
      const g = got[i];
      if (g === undefined || !g.equals(v)) disagree.push(k);
    });
    batch = [];
  };
  for await (const [key, value] of db.iterator()) {
    content = (content + entryHash(key, value)) % HASH_MODULUS;
    if (key === 'state') round = stateRound(value) ?? 0;
    if (pointReads) {
      batch.push([key, value]);
      if (batch.length >= 256) await check();
    }
  }
  if (pointReads && batch.length > 0) await check();
  return { content, round, disagree };
}

function integrityText(r: IntegrityRecord): string {
  const body = JSON.stringify(r);
  return JSON.stringify({ ...r, check: createHash('sha256').update(body).digest('hex') });
}

export interface OpenStoreOptions {
  /**
   * Accept the content as it is when the integrity record is missing or disagrees, and record it anew:
   * only for an operator who checked the store by other means. Default false: such a store is refused.
   */
  readonly trustContent?: boolean;
  /**
   * Open a damaged store only to read what can be read (a repair's copy of it): no integrity check, and
   * the integrity record is not written.
   */
  readonly salvage?: boolean;
}

type WriteOp = { readonly type: 'put'; readonly key: string; readonly value: Buffer } | { readonly type: 'del'; readonly key: string };

export class LevelFederationStore extends LocalRounds implements FederationStore {
  /** Writes one after another, each with its integrity record before and after. */
  private writes: Promise<void> = Promise.resolve();

  private constructor(
    private readonly db: ClassicLevel<string, Buffer>,
    private readonly path: string,
    private content: bigint,
    private round = 0,
  ) {
    super();
  }

  /**
   * Opens the store at `path`, creating it only when the folder is missing or empty; any other folder
   * must hold a complete store whose every entry matches its integrity record. Damage is refused with a
   * StoreDamagedError naming it; nothing is deleted or reset.
   */
  static async open(path: string, options: OpenStoreOptions = {}): Promise<LevelFederationStore> {
    const fresh = !existsSync(path) || readdirSync(path).length === 0;
    const remedy = `restore the folder from a backup, or start a new federation in an empty folder (nothing was changed)`;
    if (!fresh && !existsSync(join(path, 'CURRENT'))) {
      throw new StoreDamagedError(
        `the store ${path} is not a complete store: it holds files but no LevelDB CURRENT file (deleted or damaged, or another program's folder); ${remedy}`,
      );
    }
    // Checked before LevelDB opens the folder: its recovery drops a damaged log record and rewrites the log,
    // telling no one, and it reads tables' index and filter blocks without their checksums.
    if (!fresh && !options.salvage && !options.trustContent) {
      const wal = damagedWal(path);
      const tables = damagedTables(path);
      if (wal.length > 0 || tables.length > 0) {
        const what = [...(wal.length > 0 ? [describeWalDamage(wal)] : []), ...tables.map((t) => `its table ${t.file} is damaged: ${t.what}`)].join('; ');
        throw new StoreDamagedError(
          `the store ${path} is damaged: ${what}; it was not opened and nothing was changed; restore the folder from a backup, or rebuild it from its round history with fedkseed server repair --store ${path} (it keeps the rounds it can read, names the rounds lost, and moves the damaged folder aside)`,
        );
      }
    }
    // Uncompressed tables: every block's checksum can then be checked before an open (level-tables.ts).
    const db = new ClassicLevel<string, Buffer>(path, { keyEncoding: 'utf8', valueEncoding: 'buffer', createIfMissing: fresh, compression: false });
    try {
      await db.open();
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      if (cause?.code === 'LEVEL_LOCKED') throw err;
      throw new StoreDamagedError(`the store ${path} cannot be opened: ${cause?.message ?? errorMessage(err)}; ${remedy}`, { cause: err });
    }
    if (options.salvage) {
      // A repair reads by key: tables rewritten from a scan first, where they can be, so a damaged filter hides nothing.
      await db.compactRange('\u0000', '\uffff').catch(() => undefined);
      return new LevelFederationStore(db, path, 0n);
    }
    try {
      let content: bigint | null = 0n;
      let scannedRound = 0;
      let unreadable = '';
      try {
        ({ content, round: scannedRound } = await scan(db, false));
      } catch (err) {
        content = null;
        unreadable = errorMessage(err);
      }
      const store = new LevelFederationStore(db, path, content ?? 0n, scannedRound);
      if (content === null && options.trustContent) throw new Error(unreadable);
      if (fresh) {
        await store.writeIntegrity({ content: (content ?? 0n).toString(16), round: 0 });
        return store;
      }
      const recorded = await readIntegrity(path);
      const ok = content !== null && recorded !== null && [recorded.content, recorded.pending].includes(content.toString(16));
      // The chain of round records and the state's checksums name what is damaged, where they can; records
      // that fail them are refused even with trustContent, which vouches for the store as a whole only.
      const chain = ok ? null : await verifyChain(store);
      if (chain && (!options.trustContent || chain.damage.length > 0)) {
        const whole =
          content === null
            ? `its entries cannot be read (${unreadable})`
            : recorded === null
              ? `its integrity record ${INTEGRITY_FILE} is missing or damaged`
              : `its entries do not match its integrity record (entries lost, altered or rolled back: a damaged table or write-ahead log)${roundsLost(recorded, scannedRound)}`;
        const what = chain.damage.length > 0 ? `${whole}: ${describeDamage(chain)}` : whole;
        const rebuild =
          chain.damage.length > 0
            ? `, or rebuild it from its round history with fedkseed server repair --store ${path} (it keeps rounds 1..${chain.intact} and says what is lost; the damaged folder is moved aside and kept)`
            : '';
        const trust =
          chain.damage.length > 0
            ? ' (--trust-store does not accept records that fail their own hashes)'
            : ', or, if you verified the store otherwise, accept it as it is with --trust-store';
        throw new StoreDamagedError(`the store ${path} is damaged: ${what}; ${remedy}${rebuild}${trust}`);
      }
      // What passed is what a scan reads; the server reads by key, through each table's index and filter.
      const checked = await scan(db, true);
      if (checked.content !== content || checked.disagree.length > 0) {
        const keys = checked.disagree.slice(0, 5).join(', ');
        throw new StoreDamagedError(
          `the store ${path} is damaged: reads by key disagree with a scan of its tables${keys ? ` for ${keys}${checked.disagree.length > 5 ? ` and ${checked.disagree.length - 5} more` : ''}` : ''} (a damaged table index or filter block); ${remedy}, or rebuild it with fedkseed server repair --store ${path}`,
        );
      }
      if (!ok || recorded?.pending !== undefined || recorded?.round !== scannedRound)
        await store.writeIntegrity({ content: (content ?? 0n).toString(16), round: scannedRound });
      return store;
    } catch (err) {
      await db.close();
      if (err instanceof StoreDamagedError) throw err;
      throw new StoreDamagedError(`the store ${path} cannot be read: ${errorMessage(err)}; ${remedy}`, { cause: err });
    }
  }

  private async writeIntegrity(r: IntegrityRecord): Promise<void> {
    const file = join(this.path, INTEGRITY_FILE);
    const tmp = `${file}.tmp`;
    const handle = await openFile(tmp, 'w');
    try {
      await handle.writeFile(integrityText(r));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  }

  /** Applies `ops` (or those `make` gives, in turn with other writes) atomically and durably, the integrity record following the content. */
  private write(make: readonly WriteOp[] | (() => Promise<readonly WriteOp[]>)): Promise<void> {
    const run = this.writes.then(async () => {
      const ops = typeof make === 'function' ? await make() : make;
      let next = this.content;
      for (const op of ops) {
        const old = await this.db.get(op.key);
        if (old !== undefined) next -= entryHash(op.key, old);
        if (op.type === 'put') next += entryHash(op.key, op.value);
      }
      next = ((next % HASH_MODULUS) + HASH_MODULUS) % HASH_MODULUS;
      const state = ops.find((op) => op.key === 'state');
      const nextRound = state?.type === 'put' ? (stateRound(state.value) ?? this.round) : this.round;
      await this.writeIntegrity({ content: this.content.toString(16), round: this.round, pending: next.toString(16), pendingRound: nextRound });
      await this.db.batch(
        ops.map((op) => ({ ...op })),
        { sync: true },
      );
      this.content = next;
      this.round = nextRound;
      await this.writeIntegrity({ content: next.toString(16), round: nextRound });
    });
    this.writes = run.catch(() => undefined);
    return run;
  }

  private async getJson<T>(key: string, shape: { readonly [K in keyof T]-?: FieldKind }): Promise<T | null> {
    const v = await this.db.get(key);
    return v === undefined ? null : checked<T>(parseJson(v, key), shape, key);
  }

  private putJson(key: string, value: unknown): Promise<void> {
    return this.write([{ type: 'put', key, value: Buffer.from(JSON.stringify(value)) }]);
  }

  async loadConfig(): Promise<FederationConfig | null> {
    const v = await this.db.get('config');
    return v === undefined ? null : checkedConfig(parseJson(v, 'config'));
  }

  saveConfig(config: FederationConfig): Promise<void> {
    return this.putJson('config', config);
  }

  async loadState(): Promise<FederationState | null> {
    const v = await this.db.get('state');
    return v === undefined ? null : decodeState(v);
  }

  async committedRound(): Promise<number> {
    return (await this.loadState())?.round ?? 0;
  }

  async commitRound(state: FederationState, record: RoundRecord): Promise<void> {
    await this.write(async () => {
      const prev = await this.loadState();
      const current = prev?.round ?? 0;
      if (state.round !== current + 1 || record.round !== state.round) throw new StaleRoundError(state.round, current);
      const sealed = await sealCommit(prev, state, record, (r) => this.loadRound(r));
      const { after, ...rest } = sealed.record;
      const stored: StoredRound = { ...rest, change: f64ToBuffer(record.change).toString('base64'), ...(after ? { after: afterToJson(after) } : {}) };
      return [
        { type: 'put', key: 'state', value: encodeState(sealed.state) },
        { type: 'put', key: roundKey(record.round), value: Buffer.from(JSON.stringify(stored)) },
      ];
    });
    this.committed(record.round);
  }

  async loadRound(round: number): Promise<RoundRecord | null> {
    const v = await this.db.get(roundKey(round));
    if (v === undefined) return null;
    // A round whose uploads reported no losses has NaN ones, which JSON writes as null.
    const json = parseJson(v, roundKey(round)) as Record<string, unknown>;
    for (const f of ['lossBefore', 'lossAfter']) if (json !== null && typeof json === 'object' && json[f] === null) json[f] = NaN;
    const s = checked<Omit<StoredRound, 'after' | 'link'>>(json, roundShape, roundKey(round)) as StoredRound;
    const raw = Buffer.from(s.change, 'base64');
    if (raw.length % 8 !== 0) throw new Error(`the store's ${roundKey(round)} has a change of ${raw.length} bytes`);
    const { after, link, ...rest } = s;
    const k = raw.length / 8;
    return {
      ...rest,
      change: bufferToF64(raw, 0, k),
      ...(after === undefined ? {} : { after: afterFromJson(after, k, round) }),
      ...(link === undefined ? {} : { link: linkFromJson(link, round) }),
    };
  }

  async loadSecret(): Promise<Uint8Array> {
    const v = await this.db.get('secret');
    if (v !== undefined) {
      if (v.length !== SAMPLING_SECRET_BYTES) throw new Error(`the store's sampling secret is ${v.length} bytes, expected ${SAMPLING_SECRET_BYTES}`);
      return new Uint8Array(v);
    }
    const secret = randomBytes(SAMPLING_SECRET_BYTES);
    await this.write([{ type: 'put', key: 'secret', value: secret }]);
    return new Uint8Array(secret);
  }

  async loadDigest(round: number): Promise<string | null> {
    const v = await this.db.get(digestKey(round));
    return v === undefined ? null : v.toString('utf8');
  }

  saveDigest(round: number, digest: string): Promise<void> {
    return this.write([{ type: 'put', key: digestKey(round), value: Buffer.from(digest) }]);
  }

  putToken(token: TokenRecord): Promise<void> {
    return this.putJson(`token/${token.id}`, token);
  }

  getToken(id: string): Promise<TokenRecord | null> {
    return this.getJson<Omit<TokenRecord, OptionalTokenField>>(`token/${id}`, tokenShape).then((t) => t && checkedToken(t));
  }

  async deleteToken(id: string): Promise<boolean> {
    if ((await this.db.get(`token/${id}`)) === undefined) return false;
    await this.write([{ type: 'del', key: `token/${id}` }]);
    return true;
  }

  async listTokens(): Promise<TokenRecord[]> {
    const out: TokenRecord[] = [];
    for await (const v of this.db.values({ gte: 'token/', lt: 'token0' })) out.push(checkedToken(parseJson(v, 'token')));
    return out;
  }

  async close(): Promise<void> {
    await this.writes;
    return this.db.close();
  }
}

/** ": its integrity record has it at round 3, its entries at round 2 (round 3 lost)", or nothing when it cannot say. */
function roundsLost(recorded: IntegrityRecord | null, scanned: number): string {
  const at = recorded?.round;
  if (at === undefined || at <= scanned) return '';
  const lost = at === scanned + 1 ? `round ${at}` : `rounds ${scanned + 1}..${at}`;
  return `: its integrity record has it at round ${at}, its entries at round ${scanned} (${lost} lost)`;
}

/** The round the store's integrity record says it holds (the last write that completed), or null when it does not say. */
export async function recordedRound(path: string): Promise<number | null> {
  return (await readIntegrity(path))?.round ?? null;
}

async function readIntegrity(path: string): Promise<IntegrityRecord | null> {
  let text: string;
  try {
    text = await readFile(join(path, INTEGRITY_FILE), 'utf8');
  } catch {
    return null;
  }
  try {
    const { check, ...r } = JSON.parse(text) as IntegrityRecord & { check?: string };
    if (typeof r.content !== 'string' || (r.pending !== undefined && typeof r.pending !== 'string')) return null;
    if ((r.round !== undefined && !Number.isSafeInteger(r.round)) || (r.pendingRound !== undefined && !Number.isSafeInteger(r.pendingRound))) return null;
    return createHash('sha256').update(JSON.stringify(r)).digest('hex') === check ? r : null;
  } catch {
    return null;
  }
}
