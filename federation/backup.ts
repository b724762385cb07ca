// A portable, self-checking backup of a federation, read and restored only through the FederationStore
// interface (store.ts), so it serves every backend. The file is JSON lines: a header, one line per
// record (config, state, each round, each digest, each token) and an end line holding the record count
// and a SHA-256 over every byte before it, and an HMAC-SHA256 over the same bytes with the operator's
// backup key (backup-key.ts); a truncated, damaged or altered file is refused, and so is one whose HMAC
// does not verify: its SHA-256 shows damage, only the HMAC shows who made it. The same store and key always
// give the same bytes, so a backup, a restore and a backup of the restored store are identical file for file.
import { createHash, createHmac, timingSafeEqual, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import * as z from 'zod/mini';
import type { FederationConfig } from '../protocol';
import { federationConfigSchema } from '../protocol/config-schema';
import { afterFromJson, afterToJson, applyRound, initialState } from './record-chain';
import type { FederationState, FederationStore, RoundRecord, TokenRecord } from './store';
import { errorMessage } from '../protocol/errors';

export const BACKUP_FORMAT = 'fedkseed-backup';
/** 2: a round may carry its history (what it left in the residual and importance); 1 is still read. */
export const BACKUP_VERSION = 2;

/** The backup file cannot be used: `message` names what is wrong with it; nothing was changed. */
export class BackupDamagedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupDamagedError';
  }
}

const int = () => z.number().check(z.int(), z.nonnegative());
const base64 = () => z.string().check(z.regex(/^[A-Za-z0-9+/]*={0,2}$/));

const headerSchema = z.object({ format: z.literal(BACKUP_FORMAT), version: z.union([z.literal(1), z.literal(BACKUP_VERSION)]), k: int(), round: int() });
const sparseSchema = () => z.object({ indices: base64(), values: base64() });

const recordSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('config'), config: federationConfigSchema }),
  z.object({ kind: z.literal('state'), round: int(), coefficients: base64(), residual: base64(), importanceSum: base64(), importanceCount: base64() }),
  z.object({
    kind: z.literal('round'),
    round: int(),
    /** The entries of ΔC other than +0 (−0 kept, bit for bit): seed indices (uint32) and changes (float64), little-endian. */
    change: z.object({ indices: base64(), values: base64() }),
    participants: z.array(z.string()),
    examples: z.number(),
    /** JSON has no NaN: a loss without a value is null. */
    lossBefore: z.nullable(z.number()),
    lossAfter: z.nullable(z.number()),
    committedAt: z.string(),
    /** The residual and importance entries the round changed, with their values after it (record-chain.ts). */
    after: z.optional(
      z.object({
        residual: sparseSchema(),
        importanceSum: sparseSchema(),
        importanceCount: sparseSchema(),
        robust: z.optional(z.string()),
        sampling: z.optional(z.string()),
      }),
    ),
  }),
  z.object({ kind: z.literal('digest'), round: int(), digest: z.string().check(z.regex(/^[0-9a-f]{64}$/)) }),
  z.object({
    kind: z.literal('token'),
    id: z.string(),
    label: z.string(),
    salt: z.string(),
    hash: z.string(),
    createdAt: z.string(),
    clientId: z.optional(z.string()),
    maxExamples: z.optional(z.number().check(z.int(), z.positive())),
    /** A revoked token is kept (its client id stays reserved): a restore must not bring it back to life. */
    revokedAt: z.optional(z.string()),
  }),
]);
type BackupRecord = z.infer<typeof recordSchema>;

const hex256 = () => z.string().check(z.regex(/^[0-9a-f]{64}$/));
/** `hmac` is absent only in backups made before backups were authenticated. */
const endSchema = z.object({ kind: z.literal('end'), records: int(), sha256: hex256(), hmac: z.optional(hex256()) });

/** What a backup holds, decoded and checked. Round changes stay sparse: a round touches few seeds. */
export interface Backup {
  readonly config: FederationConfig;
  readonly state: FederationState | null;
  readonly rounds: readonly (Omit<RoundRecord, 'change'> & { readonly change: SparseChange })[];
  readonly digests: readonly { readonly round: number; readonly digest: string }[];
  readonly tokens: readonly TokenRecord[];
  /** SHA-256 (hex) of the record lines alone: equal for two stores with the same content. */
  readonly contentHash: string;
}

/** ΔC's entries other than +0, in index order. */
interface SparseChange {
  readonly indices: Uint32Array;
  readonly values: Float64Array;
}

function sparseOf(change: Float64Array): { indices: string; values: string } {
  const at: number[] = [];
  change.forEach((c, j) => !Object.is(c, 0) && at.push(j));
  const indices = Uint32Array.from(at);
  const values = Float64Array.from(at, (j) => change[j]);
  return { indices: Buffer.from(indices.buffer).toString('base64'), values: Buffer.from(values.buffer).toString('base64') };
}

function decodeSparse(change: { indices: string; values: string }, k: number, round: number): SparseChange {
  const ib = Buffer.from(change.indices, 'base64');
  const vb = Buffer.from(change.values, 'base64');
  if (ib.length % 4 !== 0 || vb.length !== (ib.length / 4) * 8)
    throw new BackupDamagedError(`round ${round}'s change has ${ib.length / 4} indices and ${vb.length / 8} values`);
  const indices = new Uint32Array(ib.length / 4);
  Buffer.from(indices.buffer).set(ib);
  const values = new Float64Array(vb.length / 8);
  Buffer.from(values.buffer).set(vb);
  for (let n = 0; n < indices.length; n++) {
    if (indices[n] >= k || (n > 0 && indices[n] <= indices[n - 1]))
      throw new BackupDamagedError(`round ${round}'s change names seed ${indices[n]} out of order or beyond K = ${k}`);
    if (!Number.isSafeInteger(values[n])) throw new BackupDamagedError(`round ${round}'s change for seed ${indices[n]} is not an exact integer`);
  }
  return { indices, values };
}

const f64ToBase64 = (v: Float64Array): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');

function base64ToF64(text: string, k: number, what: string): Float64Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== k * 8) throw new BackupDamagedError(`its ${what} holds ${bytes.length / 8} values, K is ${k}`);
  const out = new Float64Array(k);
  Buffer.from(out.buffer).set(bytes);
  return out;
}

const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

/**
 * The store's records in backup order. The state is read first and then the rounds and digests up to its
 * round, which committed rounds never change: a store that commits meanwhile still gives a consistent
 * backup of that round.
 */
async function* storeRecords(store: FederationStore): AsyncGenerator<BackupRecord> {
  const config = await store.loadConfig();
  if (!config) throw new Error('the store holds no federation (no configuration)');
  yield { kind: 'config', config };
  const state = await store.loadState();
  const round = state?.round ?? 0;
  if (state) {
    yield {
      kind: 'state',
      round,
      coefficients: f64ToBase64(state.coefficients),
      residual: f64ToBase64(state.residual),
      importanceSum: f64ToBase64(state.importanceSum),
      importanceCount: f64ToBase64(state.importanceCount),
    };
  }
  for (let r = 1; r <= round; r++) {
    const record = await store.loadRound(r);
    if (!record) throw new Error(`committed round ${r} is missing from the store`);
    yield {
      kind: 'round',
      round: r,
      change: sparseOf(record.change),
      participants: [...record.participants],
      examples: record.examples,
      lossBefore: finiteOrNull(record.lossBefore),
      lossAfter: finiteOrNull(record.lossAfter),
      committedAt: record.committedAt,
      ...(record.after ? { after: afterToJson(record.after) } : {}),
    };
  }
  for (let r = 0; r <= round; r++) {
    const digest = await store.loadDigest(r);
    if (digest !== null) yield { kind: 'digest', round: r, digest };
  }
  const tokens = (await store.listTokens()).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const t of tokens) yield { kind: 'token', ...t };
}

/** The line of a record, its fields in the schema's order whatever order the store gave them in. */
function recordLine(r: BackupRecord): string {
  const parsed = recordSchema.safeParse(r);
  if (!parsed.success)
    throw new Error(`the store holds a record the backup cannot carry (${r.kind}): ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}`);
  return `${JSON.stringify(parsed.data)}\n`;
}

/** SHA-256 of the store's record lines (what a backup of it would hold). */
export async function storeContentHash(store: FederationStore): Promise<string> {
  const hash = createHash('sha256');
  for await (const r of storeRecords(store)) hash.update(recordLine(r));
  return hash.digest('hex');
}

export interface BackupSummary {
  readonly round: number;
  readonly records: number;
  readonly tokens: number;
  readonly bytes: number;
}

/**
 * Writes a backup of `store` to `file`: to a temporary file beside it first, synced, then renamed, so
 * `file` is either the old one or the whole new backup. The store's rounds must add up to its C.
 */
export async function writeBackup(store: FederationStore, file: string, key: Uint8Array): Promise<BackupSummary> {
  const config = await store.loadConfig();
  const state = await store.loadState();
  const round = state?.round ?? 0;
  const tmp = `${file}.tmp-${process.pid}`;
  const handle = await open(tmp, 'w');
  const whole = createHash('sha256');
  const mac = createHmac('sha256', key);
  let bytes = 0;
  let records = 0;
  let tokens = 0;
  const sum = new Float64Array(config?.k ?? 0);
  const write = async (line: string): Promise<void> => {
    whole.update(line);
    mac.update(line);
    bytes += Buffer.byteLength(line);
    await handle.write(line);
  };
  try {
    await write(`${JSON.stringify({ format: BACKUP_FORMAT, version: BACKUP_VERSION, k: config?.k ?? 0, round })}\n`);
    for await (const r of storeRecords(store)) {
      if (r.kind === 'state' && r.round !== round) throw new Error(`the store's state moved from round ${round} to ${r.round} while it was read`);
      if (r.kind === 'round') {
        const change = decodeSparse(r.change, sum.length, r.round);
        change.indices.forEach((j, n) => (sum[j] += change.values[n]));
      }
      if (r.kind === 'token') tokens++;
      await write(recordLine(r));
      records++;
    }
    if (state && !sum.every((c, j) => c === state.coefficients[j])) {
      throw new Error(`the store is inconsistent: its rounds 1..${round} do not add up to its coefficients C; it was not backed up`);
    }
    const end = `${JSON.stringify({ kind: 'end', records, sha256: whole.digest('hex'), hmac: mac.digest('hex') })}\n`;
    bytes += Buffer.byteLength(end);
    await handle.write(end);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  await rename(tmp, file);
  return { round, records, tokens, bytes };
}

/** Parses one line against a schema, or names what is wrong with it. */
function parseLine<T>(schema: z.ZodMiniType<T>, line: string, at: number): T {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new BackupDamagedError(`line ${at} is not JSON`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw new BackupDamagedError(
      `line ${at} is not a valid record (${parsed.error.issues.map((i) => `${i.path.join('.') || 'record'}: ${i.message}`).join('; ')})`,
    );
  return parsed.data;
}

/** Sequence checks over the records, in the order a backup writes them. */
class BackupBuilder {
  config: FederationConfig | null = null;
  state: FederationState | null = null;
  readonly rounds: Backup['rounds'][number][] = [];
  readonly digests: Backup['digests'][number][] = [];
  readonly tokens: TokenRecord[] = [];
  private sum: Float64Array | null = null;

  constructor(private readonly header: z.infer<typeof headerSchema>) {}

  add(r: BackupRecord): void {
    if (r.kind === 'config') {
      if (this.config) throw new BackupDamagedError('it holds two configurations');
      if (r.config.k !== this.header.k) throw new BackupDamagedError(`its configuration has K = ${r.config.k}, its header ${this.header.k}`);
      this.config = r.config;
      this.sum = new Float64Array(r.config.k);
      return;
    }
    const config = this.config;
    if (!config || !this.sum) throw new BackupDamagedError(`a ${r.kind} record comes before the configuration`);
    const k = config.k;
    if (r.kind === 'state') {
      if (this.state || this.rounds.length > 0) throw new BackupDamagedError('its state is out of place');
      if (r.round !== this.header.round) throw new BackupDamagedError(`its state is at round ${r.round}, its header says ${this.header.round}`);
      const coefficients = base64ToF64(r.coefficients, k, 'coefficients');
      if (!coefficients.every(Number.isSafeInteger)) throw new BackupDamagedError('its coefficients are not exact integers');
      this.state = {
        round: r.round,
        coefficients,
        residual: base64ToF64(r.residual, k, 'residual'),
        importanceSum: base64ToF64(r.importanceSum, k, 'importance sums'),
        importanceCount: base64ToF64(r.importanceCount, k, 'importance counts'),
      };
      return;
    }
    if (r.kind === 'round') {
      const expected = this.rounds.length + 1;
      if (r.round !== expected) throw new BackupDamagedError(`round ${r.round} comes where round ${expected} should`);
      if (r.round > this.header.round) throw new BackupDamagedError(`it holds round ${r.round}, beyond its state's round ${this.header.round}`);
      const change = decodeSparse(r.change, k, r.round);
      const sum = this.sum;
      change.indices.forEach((j, n) => (sum[j] += change.values[n]));
      let after;
      try {
        after = r.after === undefined ? null : afterFromJson(r.after, k, r.round);
      } catch (err) {
        throw new BackupDamagedError(errorMessage(err));
      }
      const { kind: _kind, ...round } = r;
      this.rounds.push({ ...round, change, after, lossBefore: r.lossBefore ?? Number.NaN, lossAfter: r.lossAfter ?? Number.NaN });
      return;
    }
    if (r.kind === 'digest') {
      if (r.round > this.header.round || (this.digests.length > 0 && r.round <= (this.digests.at(-1)?.round ?? -1)))
        throw new BackupDamagedError(`its digest of round ${r.round} is out of place`);
      this.digests.push({ round: r.round, digest: r.digest });
      return;
    }
    const { kind: _kind, ...token } = r;
    if (this.tokens.some((t) => t.id === token.id)) throw new BackupDamagedError(`it holds token ${token.id} twice`);
    this.tokens.push(token);
  }

  finish(contentHash: string): Backup {
    if (!this.config || !this.sum) throw new BackupDamagedError('it holds no configuration');
    const round = this.state?.round ?? 0;
    if (this.header.round > 0 && this.state === null) throw new BackupDamagedError(`its header names round ${this.header.round} but it holds no state`);
    if (this.rounds.length !== round) throw new BackupDamagedError(`it holds ${this.rounds.length} rounds, its state is at round ${round}`);
    const c = this.state?.coefficients;
    if (c && !this.sum.every((s, j) => s === c[j])) throw new BackupDamagedError(`its rounds 1..${round} do not add up to its coefficients C`);
    if (this.state && historyComplete(this.rounds)) {
      const rebuilt = rebuildStates(this.config.k, this.rounds).at(-1) as FederationState;
      for (const v of ['residual', 'importanceSum', 'importanceCount'] as const) {
        if (!rebuilt[v].every((x, j) => Object.is(x, this.state?.[v][j])))
          throw new BackupDamagedError(`its rounds' history does not add up to its state's ${v}`);
      }
    }
    return { config: this.config, state: this.state, rounds: this.rounds, digests: this.digests, tokens: this.tokens, contentHash };
  }
}

/** How a backup's HMAC is checked: with the key (required), or, for a backup made before backups carried one, `acceptUnauthenticated`. */
export interface BackupAuth {
  readonly key: Uint8Array;
  /** Accept a backup with no HMAC at all (one with a wrong HMAC is still refused). */
  readonly acceptUnauthenticated?: boolean;
}

/** Reads and checks a backup: its HMAC with the backup key, its hash, every record's shape and the records' sequence. */
export async function readBackup(file: string, auth: BackupAuth): Promise<Backup> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  const whole = createHash('sha256');
  const mac = createHmac('sha256', auth.key);
  const content: Hash = createHash('sha256');
  let builder: BackupBuilder | null = null;
  let end: z.infer<typeof endSchema> | null = null;
  let count = 0;
  let at = 0;
  try {
    for await (const line of lines) {
      at++;
      if (end) throw new BackupDamagedError(`it goes on after its end line (line ${at})`);
      if (at === 1) {
        const header = parseLine(headerSchema, line, at);
        builder = new BackupBuilder(header);
        whole.update(`${line}\n`);
        mac.update(`${line}\n`);
        continue;
      }
      if (line.startsWith('{"kind":"end"')) {
        end = parseLine(endSchema, line, at);
        continue;
      }
      (builder as BackupBuilder).add(parseLine(recordSchema, line, at));
      whole.update(`${line}\n`);
      mac.update(`${line}\n`);
      content.update(`${line}\n`);
      count++;
    }
  } catch (err) {
    if (err instanceof BackupDamagedError) throw new BackupDamagedError(`the backup ${file} is damaged or was altered: ${err.message}`);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BackupDamagedError(`there is no backup file ${file}`);
    throw err;
  }
  const damaged = (why: string) => new BackupDamagedError(`the backup ${file} is damaged or was altered: ${why}`);
  if (!builder) throw damaged('it is empty');
  if (!end) throw damaged('it has no end line (cut short?)');
  if (end.sha256 !== whole.digest('hex')) throw damaged('its content does not match its SHA-256');
  if (end.hmac === undefined && !auth.acceptUnauthenticated) {
    throw damaged(
      'it carries no HMAC, so nothing shows it was made with your backup key (a backup made before backups were authenticated is restored only with --accept-unauthenticated)',
    );
  }
  if (end.hmac !== undefined && !timingSafeEqual(Buffer.from(end.hmac, 'hex'), mac.digest())) {
    throw damaged('its HMAC does not match the backup key (it was altered, or made with another key)');
  }
  if (end.records !== count) throw damaged(`it holds ${count} records, its end line counts ${end.records}`);
  try {
    return builder.finish(content.digest('hex'));
  } catch (err) {
    if (err instanceof BackupDamagedError) throw damaged(err.message);
    throw err;
  }
}

function denseOf(k: number, sparse: SparseChange): Float64Array {
  const change = new Float64Array(k);
  sparse.indices.forEach((j, n) => (change[j] = sparse.values[n]));
  return change;
}

const historyComplete = (rounds: Backup['rounds']): boolean => rounds.every((r) => r.after);

/**
 * The state after each round. With every round's history it is the state the store had then, bit for
 * bit; without, C is exact and the residual and importance are zero (a store keeps only its last state).
 */
function rebuildStates(k: number, rounds: Backup['rounds']): FederationState[] {
  const complete = historyComplete(rounds);
  const out: FederationState[] = [];
  let state = initialState(k);
  for (const r of rounds) {
    const record = { ...r, change: denseOf(k, r.change) };
    state = complete ? applyRound(state, record) : { ...initialState(k), round: r.round, coefficients: state.coefficients.map((c, j) => c + record.change[j]) };
    out.push(state);
  }
  return out;
}

/** Whether the store holds nothing: no configuration, state or token. */
export async function storeIsEmpty(store: FederationStore): Promise<boolean> {
  return (await store.loadConfig()) === null && (await store.loadState()) === null && (await store.listTokens()).length === 0;
}

/**
 * Restores `backup` into an empty `store` and checks that the store now gives back exactly the backup's
 * records. Rounds are committed in order through commitRound, each with the state after it (rebuilt from
 * the rounds' history, or with C alone for rounds without one) and its history as the backup holds it,
 * so the restored store's hash chain covers the same records; the last round carries the backup's state.
 * The configuration is written last: a restore cut short leaves a store without one, which is no
 * federation yet.
 */
export async function restoreBackup(backup: Backup, store: FederationStore): Promise<void> {
  if (!(await storeIsEmpty(store))) throw new Error('the store is not empty: restore into an empty store');
  const k = backup.config.k;
  const states = rebuildStates(k, backup.rounds);
  for (const [i, r] of backup.rounds.entries()) {
    const last = r.round === backup.rounds.length;
    await store.commitRound(last && backup.state ? backup.state : states[i], {
      ...r,
      change: denseOf(k, r.change),
      participants: [...r.participants],
      after: r.after ?? null,
    });
  }
  for (const d of backup.digests) await store.saveDigest(d.round, d.digest);
  for (const t of backup.tokens) await store.putToken(t);
  await store.saveConfig(backup.config);
  const restored = await storeContentHash(store);
  if (restored !== backup.contentHash)
    throw new Error('the restored store does not give back the backup it was restored from (a store that altered what it was given)');
}
