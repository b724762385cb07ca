// FederationStore on LevelDB (classic-level: prebuilt binaries, no compile step at install). Every
// write uses sync: true, so a returned commit is on disk; a round's state and record go in one batch.
// What it reads back is checked field by field: a damaged or foreign store is refused by name, not
// handed on as whatever JSON it holds.
import { ClassicLevel } from 'classic-level';
import type { FederationConfig } from '../protocol';
import type { FederationState, FederationStore, RoundRecord, TokenRecord } from './store';

type FieldKind = 'string' | 'number' | 'string[]' | readonly string[];

/** `value` as a T when every field of `shape` has its kind (a list of strings: one of them), else an error naming the first that does not. */
function checked<T>(value: unknown, shape: { readonly [K in keyof T]-?: FieldKind }, what: string): T {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`the store's ${what} is not an object`);
  const record = value as Record<string, unknown>;
  for (const [field, kind] of Object.entries(shape) as [string, FieldKind][]) {
    const v = record[field];
    const ok =
      kind === 'string[]' ? Array.isArray(v) && v.every((x) => typeof x === 'string') : typeof kind === 'string' ? typeof v === kind : kind.includes(v as string);
    if (!ok) throw new Error(`the store's ${what} has no valid ${field}`);
  }
  return value as T;
}

const configShape = {
  k: 'number',
  federationSeed: 'number',
  epsilon: 'number',
  eta: 'number',
  tau: 'number',
  batchSize: 'number',
  sampling: ['uniform', 'pro'],
  weighting: ['examples', 'equal'],
  rounds: 'number',
  clientsPerRound: 'number',
  deadlineMs: 'number',
} as const satisfies { readonly [K in keyof FederationConfig]-?: FieldKind };

const tokenShape = { id: 'string', label: 'string', salt: 'string', hash: 'string', createdAt: 'string' } as const satisfies {
  readonly [K in keyof Omit<TokenRecord, 'clientId'>]-?: FieldKind;
};

/** A token record, its optional client identity included. */
function checkedToken(value: unknown): TokenRecord {
  const record = checked<Omit<TokenRecord, 'clientId'>>(value, tokenShape, 'token') as TokenRecord;
  if (record.clientId !== undefined && typeof record.clientId !== 'string') throw new Error(`the store's token ${record.id} has no valid clientId`);
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
    throw new Error(`the store's ${what} is not JSON: ${(err as Error).message}`, { cause: err });
  }
}

function encodeState(s: FederationState): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(s.round, 0);
  head.writeUInt32LE(s.coefficients.length, 4);
  return Buffer.concat([head, f64ToBuffer(s.coefficients), f64ToBuffer(s.residual), f64ToBuffer(s.importanceSum), f64ToBuffer(s.importanceCount)]);
}

function decodeState(b: Buffer): FederationState {
  const round = b.readUInt32LE(0);
  const k = b.readUInt32LE(4);
  if (b.length !== 8 + 4 * 8 * k) throw new Error(`stored federation state is ${b.length} bytes, expected ${8 + 32 * k} for K = ${k}`);
  return {
    round,
    coefficients: bufferToF64(b, 8, k),
    residual: bufferToF64(b, 8 + 8 * k, k),
    importanceSum: bufferToF64(b, 8 + 16 * k, k),
    importanceCount: bufferToF64(b, 8 + 24 * k, k),
  };
}

interface StoredRound extends Omit<RoundRecord, 'change'> {
  readonly change: string;
}

const roundShape = {
  round: 'number',
  change: 'string',
  participants: 'string[]',
  examples: 'number',
  lossBefore: 'number',
  lossAfter: 'number',
  committedAt: 'string',
} as const satisfies { readonly [K in keyof StoredRound]-?: FieldKind };

export class LevelFederationStore implements FederationStore {
  private constructor(private readonly db: ClassicLevel<string, Buffer>) {}

  static async open(path: string): Promise<LevelFederationStore> {
    const db = new ClassicLevel<string, Buffer>(path, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
    await db.open();
    return new LevelFederationStore(db);
  }

  private async getJson<T>(key: string, shape: { readonly [K in keyof T]-?: FieldKind }): Promise<T | null> {
    const v = await this.db.get(key);
    return v === undefined ? null : checked<T>(parseJson(v, key), shape, key);
  }

  private putJson(key: string, value: unknown): Promise<void> {
    return this.db.put(key, Buffer.from(JSON.stringify(value)), { sync: true });
  }

  loadConfig(): Promise<FederationConfig | null> {
    return this.getJson<FederationConfig>('config', configShape);
  }

  saveConfig(config: FederationConfig): Promise<void> {
    return this.putJson('config', config);
  }

  async loadState(): Promise<FederationState | null> {
    const v = await this.db.get('state');
    return v === undefined ? null : decodeState(v);
  }

  async commitRound(state: FederationState, record: RoundRecord): Promise<void> {
    const stored: StoredRound = { ...record, change: f64ToBuffer(record.change).toString('base64') };
    await this.db.batch(
      [
        { type: 'put', key: 'state', value: encodeState(state) },
        { type: 'put', key: roundKey(record.round), value: Buffer.from(JSON.stringify(stored)) },
      ],
      { sync: true },
    );
  }

  async loadRound(round: number): Promise<RoundRecord | null> {
    const s = await this.getJson<StoredRound>(roundKey(round), roundShape);
    if (!s) return null;
    const raw = Buffer.from(s.change, 'base64');
    return { ...s, change: bufferToF64(raw, 0, raw.length / 8) };
  }

  async loadDigest(round: number): Promise<string | null> {
    const v = await this.db.get(digestKey(round));
    return v === undefined ? null : v.toString('utf8');
  }

  saveDigest(round: number, digest: string): Promise<void> {
    return this.db.put(digestKey(round), Buffer.from(digest), { sync: true });
  }

  putToken(token: TokenRecord): Promise<void> {
    return this.putJson(`token/${token.id}`, token);
  }

  getToken(id: string): Promise<TokenRecord | null> {
    return this.getJson<Omit<TokenRecord, 'clientId'>>(`token/${id}`, tokenShape).then((t) => t && checkedToken(t));
  }

  async deleteToken(id: string): Promise<boolean> {
    if ((await this.db.get(`token/${id}`)) === undefined) return false;
    await this.db.del(`token/${id}`, { sync: true });
    return true;
  }

  async listTokens(): Promise<TokenRecord[]> {
    const out: TokenRecord[] = [];
    for await (const v of this.db.values({ gte: 'token/', lt: 'token0' })) out.push(checkedToken(parseJson(v, 'token')));
    return out;
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
