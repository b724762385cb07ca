// A corruption sweep over a stopped server's store: for every file, a cut to half its length and bit
// flips at several offsets, and the loss of CURRENT. Each damaged store is either refused by the
// store's open (with a message naming the store and the damage) or provably harmless: every entry
// reads back identical to the undamaged store's. None is accepted silently. Every refused store is then
// rebuilt from its round history (federation/repair.ts, as `fedkseed server repair` does): where anything
// can be read, the rebuilt state is bit for bit the one the federation had after the last round kept.
// A second sweep flips bits in every block kind of the tables (data, filter, metaindex, index, footer)
// and reads the store the way the server does, by key: every value served is the committed one, or the
// store is refused.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ClassicLevel } from 'classic-level';
import type { Clock, Timer } from '../../federation/clock';
import type { ServerEvents } from '../../federation/events';
import { LevelFederationStore } from '../../federation/level-store';
import { repairFromHistory, RepairImpossibleError } from '../../federation/repair';
import type { FederationState } from '../../federation/store';
import { RoundEngine, type Outbox } from '../../federation/round-engine';
import { createToken } from '../../federation/tokens';
import type { FederationConfig, HelloMessage, UploadMessage } from '../../protocol';
import { errorMessage } from '../../protocol/errors';

const config: FederationConfig = {
  k: 256,
  federationSeed: 4,
  epsilon: 1e-3,
  eta: 1e-3,
  tau: 8,
  batchSize: 1,
  sampling: 'pro',
  weighting: 'examples',
  rounds: 50,
  clientsPerRound: 2,
  deadlineMs: 1000,
};
const MODEL_HASH = new Uint8Array(32).fill(3);
const clock: Clock = { now: () => 1_700_000_000_000, setTimer: (): Timer => ({ cancel: () => {} }) };
const outbox: Outbox<string> = { send: () => {}, refuse: () => {}, displace: () => {} };
/**
 * Waits until the store holds round `committed` committed and round `open` open. The engine writes both
 * after it decides, through its store's own asynchronous I/O, so a fixed number of event-loop turns is not
 * enough on a busy machine: the store itself says when the federation got there.
 */
async function storeReaches(store: LevelFederationStore, committed: number, open: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const state = await store.loadState();
    const openRound = await store.loadOpenRound();
    if ((state?.round ?? 0) >= committed && openRound?.round === open) return;
    if (Date.now() > deadline) throw new Error(`the store did not reach round ${committed} committed and ${open} open within 10 s`);
    await new Promise<void>((r) => setTimeout(r, 5));
  }
}

function engineOptions(store: LevelFederationStore) {
  return { config, store, clock, outbox, events: new EventEmitter<ServerEvents>(), log: () => {}, modelHash: MODEL_HASH, generatorVersion: 1, paramCount: 100 };
}

/** Every entry of a store, read with LevelDB alone. */
async function dump(path: string): Promise<Map<string, string>> {
  const db = new ClassicLevel<string, Buffer>(path, { keyEncoding: 'utf8', valueEncoding: 'buffer', createIfMissing: false });
  await db.open();
  const out = new Map<string, string>();
  for await (const [k, v] of db.iterator()) out.set(k, v.toString('hex'));
  await db.close();
  return out;
}

/** The state after each round as the engine committed it (index: round). */
const history: (FederationState | null)[] = [null];

/** Runs a few rounds into a store, with tokens and digests, and compacts part of it into a table. */
async function buildStore(path: string): Promise<void> {
  const store = await LevelFederationStore.open(path);
  const engine = await RoundEngine.open<string>(engineOptions(store));
  await createToken(store, 'a', 'a');
  await createToken(store, 'b');
  for (const id of ['a', 'b']) {
    const hello: HelloMessage = { type: 'hello', clientId: id, token: '', modelHash: MODEL_HASH, lastSyncedRound: 0, generatorVersion: 1 };
    await engine.join(id, hello);
  }
  await storeReaches(store, 0, 1);
  for (let round = 1; round <= 6; round++) {
    for (const [i, id] of ['a', 'b'].entries()) {
      const upload: UploadMessage = {
        type: 'upload',
        round,
        examples: 4,
        lossBeforeSum: 2,
        lossBeforeCount: 1,
        lossAfterSum: 1,
        lossAfterCount: 1,
        digestRound: round - 1,
        digest: new Uint8Array(32).fill(round),
        pairs: Array.from({ length: 8 }, (_, j) => ({ seed: (round * 17 + j * 5 + i) % config.k, g: ((j + 1) * (i ? -1 : 1)) / 3 })),
      };
      await engine.upload(id, id, upload);
    }
    await storeReaches(store, round, round + 1);
    history[round] = await store.loadState();
    if (round === 3) {
      // Half the rounds go into a compacted table, the rest stay in the write-ahead log.
      engine.close();
      await store.close();
      const raw = new ClassicLevel<string, Buffer>(path, { valueEncoding: 'buffer' });
      await raw.open();
      await raw.compactRange('\u0000', '\uffff');
      await raw.close();
      return buildRest(path);
    }
  }
}

async function buildRest(path: string): Promise<void> {
  const store = await LevelFederationStore.open(path);
  const engine = await RoundEngine.open<string>(engineOptions(store));
  for (const id of ['a', 'b'])
    await engine.join(id, { type: 'hello', clientId: id, token: '', modelHash: MODEL_HASH, lastSyncedRound: 3, generatorVersion: 1 });
  await storeReaches(store, 3, 4);
  for (let round = 4; round <= 6; round++) {
    for (const [i, id] of ['a', 'b'].entries()) {
      await engine.upload(id, id, {
        type: 'upload',
        round,
        examples: 4,
        lossBeforeSum: 2,
        lossBeforeCount: 1,
        lossAfterSum: 1,
        lossAfterCount: 1,
        digestRound: round - 1,
        digest: new Uint8Array(32).fill(round),
        pairs: Array.from({ length: 8 }, (_, j) => ({ seed: (round * 17 + j * 5 + i) % config.k, g: ((j + 1) * (i ? -1 : 1)) / 3 })),
      });
    }
    await storeReaches(store, round, round + 1);
    history[round] = await store.loadState();
  }
  engine.close();
  await store.close();
}

/** The state of `dir` rebuilt from its round history into a new store, or null when nothing can be read. */
async function repaired(dir: string): Promise<{ kept: number; state: FederationState | null } | null> {
  const reading = `${dir}-reading`;
  const target = `${dir}-repaired`;
  cpSync(dir, reading, { recursive: true });
  try {
    let source: LevelFederationStore;
    try {
      source = await LevelFederationStore.open(reading, { salvage: true });
    } catch {
      return null;
    }
    try {
      const store = await LevelFederationStore.open(target);
      try {
        return { kept: (await repairFromHistory(source, store)).kept, state: await store.loadState() };
      } catch (err) {
        if (err instanceof RepairImpossibleError) return null;
        throw err;
      } finally {
        await store.close();
      }
    } finally {
      await source.close();
    }
  } finally {
    rmSync(reading, { recursive: true, force: true });
    rmSync(target, { recursive: true, force: true });
  }
}

function sameState(a: FederationState | null, b: FederationState | null): boolean {
  if (a === null || b === null) return a === b;
  const bytes = (v: Float64Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return a.round === b.round && (['coefficients', 'residual', 'importanceSum', 'importanceCount'] as const).every((v) => bytes(a[v]).equals(bytes(b[v])));
}

type Damage = { readonly name: string; readonly apply: (dir: string) => void };

function damages(pristine: string): Damage[] {
  const out: Damage[] = [{ name: 'CURRENT deleted', apply: (d) => unlinkSync(join(d, 'CURRENT')) }];
  for (const file of readdirSync(pristine).sort()) {
    const size = statSync(join(pristine, file)).size;
    if (file === 'LOCK' || size === 0) continue;
    out.push({ name: `${file} cut to ${size >> 1} of ${size} bytes`, apply: (d) => truncateSync(join(d, file), size >> 1) });
    for (const at of [0.1, 0.35, 0.6, 0.9]) {
      const offset = Math.min(size - 1, Math.floor(size * at));
      const bit = Math.floor(at * 80) % 8;
      out.push({
        name: `${file} bit ${bit} flipped at byte ${offset}`,
        apply: (d) => {
          const bytes = readFileSync(join(d, file));
          bytes[offset] ^= 1 << bit;
          writeFileSync(join(d, file), bytes);
        },
      });
    }
  }
  return out;
}

test('every damaged store is refused with a clear message or reads back identical: 0 silently accepted', { timeout: 120_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'fedk-corrupt-'));
  try {
    const pristine = join(root, 'pristine');
    await buildStore(pristine);
    const expected = await dump(pristine);
    assert.ok([...expected.keys()].some((k) => k.startsWith('round/')));
    const cases = damages(pristine);
    assert.ok(
      readdirSync(pristine).some((f) => f.endsWith('.ldb')),
      'a compacted table is part of the sweep',
    );
    const silent: string[] = [];
    let refused = 0;
    let harmless = 0;
    let named = 0;
    let rebuilt = 0;
    const wrongRepairs: string[] = [];
    for (const [i, c] of cases.entries()) {
      const dir = join(root, `case-${i}`);
      cpSync(pristine, dir, { recursive: true });
      c.apply(dir);
      let store: LevelFederationStore | null = null;
      try {
        store = await LevelFederationStore.open(dir);
        const engine = await RoundEngine.open<string>(engineOptions(store));
        assert.equal(engine.committedRound, 6, `${c.name}: opened at round ${engine.committedRound}`);
        engine.close();
        await store.close();
        store = null;
        const got = await dump(dir);
        if (got.size === expected.size && [...expected].every(([k, v]) => got.get(k) === v)) harmless++;
        else silent.push(c.name);
      } catch (err) {
        const message = errorMessage(err);
        if (/the store .* (is damaged|is not a complete store|cannot be opened|cannot be read)/.test(message) && /backup/.test(message)) refused++;
        else silent.push(`${c.name}: unclear refusal: ${message}`);
        if (/round \d+'s record|the state/.test(message)) named++;
        const r = await repaired(dir);
        if (r) {
          rebuilt++;
          if (!sameState(r.state, r.kept === 0 ? null : (history[r.kept] ?? null)))
            wrongRepairs.push(`${c.name}: the state rebuilt at round ${r.kept} is not the one committed then`);
        }
      } finally {
        if (store) await store.close().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      }
    }
    assert.deepEqual(silent, [], `${silent.length} of ${cases.length} damaged stores were accepted silently`);
    assert.deepEqual(wrongRepairs, []);
    t.diagnostic(
      `${cases.length} cases: ${refused} refused (${named} naming the round or state vector), ${harmless} harmless; ${rebuilt} rebuilt from their round history, each to a state the federation had`,
    );
    assert.ok(refused > 0 && refused + harmless === cases.length, `refused ${refused}, harmless ${harmless} of ${cases.length}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

type BlockKind = 'data' | 'filter' | 'metaindex' | 'index' | 'footer';
const TRAILER = 5; // each block is followed by its compression type and CRC
const FOOTER = 48;

function varint(bytes: Buffer, at: number): [number, number] {
  let value = 0;
  for (let shift = 0; ; shift += 7) {
    const b = bytes[at++];
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [value, at];
  }
}

/** A block's entries (key, value), uncompressed blocks only (doc/table_format.md). */
function blockEntries(bytes: Buffer, offset: number, size: number): [string, Buffer][] {
  assert.equal(bytes[offset + size], 0, 'an uncompressed block');
  const restarts = bytes.readUInt32LE(offset + size - 4);
  const end = offset + size - 4 - 4 * restarts;
  const out: [string, Buffer][] = [];
  let key = Buffer.alloc(0);
  for (let at = offset; at < end;) {
    let shared: number, unshared: number, length: number;
    [shared, at] = varint(bytes, at);
    [unshared, at] = varint(bytes, at);
    [length, at] = varint(bytes, at);
    key = Buffer.concat([key.subarray(0, shared), bytes.subarray(at, at + unshared)]);
    out.push([key.toString('latin1'), bytes.subarray(at + unshared, at + unshared + length)]);
    at += unshared + length;
  }
  return out;
}

/** The byte ranges of each block kind in a LevelDB table: data blocks, the filter, the metaindex, the index, the footer. */
function tableBlocks(bytes: Buffer): Record<BlockKind, [number, number][]> {
  const foot = bytes.length - FOOTER;
  const [metaOffset, a] = varint(bytes, foot);
  const [metaSize, b] = varint(bytes, a);
  const [indexOffset, c] = varint(bytes, b);
  const [indexSize] = varint(bytes, c);
  const filter = blockEntries(bytes, metaOffset, metaSize).find(([k]) => k.startsWith('filter.'));
  assert.ok(filter, 'the table has a filter block');
  const [filterOffset, d] = varint(filter[1], 0);
  const [filterSize] = varint(filter[1], d);
  const data: [number, number][] = [];
  if (bytes[indexOffset + indexSize] === 0) {
    for (const [, handle] of blockEntries(bytes, indexOffset, indexSize)) {
      const [o, e] = varint(handle, 0);
      const [n] = varint(handle, e);
      data.push([o, o + n + TRAILER]);
    }
  } else data.push([0, filterOffset]);
  return {
    data,
    filter: [[filterOffset, filterOffset + filterSize + TRAILER]],
    metaindex: [[metaOffset, metaOffset + metaSize + TRAILER]],
    index: [[indexOffset, indexOffset + indexSize + TRAILER]],
    footer: [[foot, bytes.length]],
  };
}

/** Everything the server reads by key from a store (as it reads it), as comparable text. */
async function served(store: LevelFederationStore, tokenIds: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const state = await store.loadState();
  out.state = state
    ? `${state.round}:${(['coefficients', 'residual', 'importanceSum', 'importanceCount'] as const).map((v) => Buffer.from(state[v].buffer).toString('hex')).join(':')}`
    : 'none';
  out.config = JSON.stringify(await store.loadConfig());
  out.secret = Buffer.from(await store.loadSecret()).toString('hex');
  for (let r = 0; r <= 4; r++) {
    const record = await store.loadRound(r);
    out[`round ${r}`] = record ? JSON.stringify({ ...record, change: Buffer.from(record.change.buffer).toString('hex') }) : 'none';
    out[`digest ${r}`] = (await store.loadDigest(r)) ?? 'none';
  }
  for (const id of tokenIds) out[`token ${id}`] = JSON.stringify(await store.getToken(id));
  out.tokens = JSON.stringify((await store.listTokens()).map((t) => t.id).sort());
  return out;
}

/** Three rounds, a deleted token and digests, written across restarts, so the tables hold older versions of the state beneath newer ones. */
async function buildThreeRounds(path: string, { lastInLog = false } = {}): Promise<string[]> {
  const ids: string[] = [];
  for (let round = 1; round <= 3; round++) {
    const store = await LevelFederationStore.open(path);
    const engine = await RoundEngine.open<string>(engineOptions(store));
    if (round === 1) {
      for (const label of ['a', 'b', 'revoked']) ids.push((await createToken(store, label, label === 'revoked' ? undefined : label)).id);
    }
    if (round === 3) await store.deleteToken(ids[2]);
    for (const id of ['a', 'b'])
      await engine.join(id, { type: 'hello', clientId: id, token: '', modelHash: MODEL_HASH, lastSyncedRound: round - 1, generatorVersion: 1 });
    await storeReaches(store, round - 1, round);
    for (const [i, id] of ['a', 'b'].entries()) {
      await engine.upload(id, id, {
        type: 'upload',
        round,
        examples: 4,
        lossBeforeSum: 2,
        lossBeforeCount: 1,
        lossAfterSum: 1,
        lossAfterCount: 1,
        digestRound: round - 1,
        digest: new Uint8Array(32).fill(round),
        pairs: Array.from({ length: 8 }, (_, j) => ({ seed: (round * 17 + j * 5 + i) % config.k, g: ((j + 1) * (i ? -1 : 1)) / 3 })),
      });
    }
    await storeReaches(store, round, round + 1);
    engine.close();
    await store.close();
    if (lastInLog && round === 3) break;
    // LevelDB alone (as at any restart) turns the log into a table beside the older ones.
    const raw = new ClassicLevel<string, Buffer>(path, { valueEncoding: 'buffer' });
    await raw.open();
    await raw.close();
  }
  return ids;
}

/** A deterministic sample of `n` (offset, bit) pairs in the ranges. */
function sample(ranges: readonly [number, number][], n: number, seed: number): [number, number][] {
  const bytes = ranges.flatMap(([from, to]) => Array.from({ length: to - from }, (_, i) => from + i));
  let x = seed >>> 0;
  const next = (): number => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
  return Array.from({ length: Math.min(n, bytes.length * 8) }, () => [bytes[next() % bytes.length], next() % 8] as [number, number]);
}

test(
  'bit flips in every block kind of the tables (data, filter, metaindex, index, footer): every value read by key is the committed one, or the store is refused',
  { timeout: 120_000 },
  async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'fedk-blocks-'));
    try {
      const pristine = join(root, 'pristine');
      const tokenIds = await buildThreeRounds(pristine);
      const reference = join(root, 'reference');
      cpSync(pristine, reference, { recursive: true });
      const refStore = await LevelFederationStore.open(reference);
      const want = await served(refStore, tokenIds);
      await refStore.close();
      assert.ok(want.state.startsWith('3:') && want[`token ${tokenIds[2]}`] === 'null', 'the reference serves round 3, the deleted token is gone');
      const tables = readdirSync(pristine)
        .filter((f) => /\.(ldb|sst)$/.test(f))
        .sort();
      assert.ok(tables.length >= 2, `tables: ${tables.join(', ')}`);
      const PER_KIND = 8;
      const cases: { name: string; kind: BlockKind; file: string; offset: number; bit: number }[] = [];
      for (const [n, file] of tables.entries()) {
        const blocks = tableBlocks(readFileSync(join(pristine, file)));
        for (const kind of Object.keys(blocks) as BlockKind[]) {
          for (const [offset, bit] of sample(blocks[kind], PER_KIND, 7919 * (n + 1) + kind.length))
            cases.push({ name: `${file} ${kind} block: bit ${bit} of byte ${offset}`, kind, file, offset, bit });
        }
      }
      const wrong: string[] = [];
      const counts: Record<BlockKind, { right: number; refused: number }> = {
        data: { right: 0, refused: 0 },
        filter: { right: 0, refused: 0 },
        metaindex: { right: 0, refused: 0 },
        index: { right: 0, refused: 0 },
        footer: { right: 0, refused: 0 },
      };
      for (const [i, c] of cases.entries()) {
        const dir = join(root, `case-${i}`);
        cpSync(pristine, dir, { recursive: true });
        const bytes = readFileSync(join(dir, c.file));
        bytes[c.offset] ^= 1 << c.bit;
        writeFileSync(join(dir, c.file), bytes);
        let store: LevelFederationStore | null = null;
        try {
          try {
            store = await LevelFederationStore.open(dir);
          } catch (err) {
            const message = errorMessage(err);
            if (/the store .* (is damaged|is not a complete store|cannot be opened|cannot be read)/.test(message) && /backup/.test(message))
              counts[c.kind].refused++;
            else wrong.push(`${c.name}: unclear refusal: ${message}`);
            continue;
          }
          try {
            const engine = await RoundEngine.open<string>(engineOptions(store));
            const round = engine.committedRound;
            engine.close();
            const got = await served(store, tokenIds);
            const differ = Object.keys(want).filter((k) => got[k] !== want[k]);
            if (round !== 3 || differ.length > 0) wrong.push(`${c.name}: served round ${round}${differ.length ? `, wrong ${differ.join(', ')}` : ''}`);
            else counts[c.kind].right++;
          } catch (err) {
            wrong.push(`${c.name}: opened, then failed: ${errorMessage(err)}`);
          }
        } finally {
          if (store) await store.close().catch(() => undefined);
          rmSync(dir, { recursive: true, force: true });
        }
      }
      t.diagnostic(
        `${cases.length} flips over ${tables.length} tables: ${(Object.keys(counts) as BlockKind[]).map((k) => `${k} ${counts[k].right} served right, ${counts[k].refused} refused`).join('; ')}; ${wrong.length} served wrong`,
      );
      assert.deepEqual(wrong, [], `${wrong.length} of ${cases.length} flips served something other than what was committed`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
);

/** Every file of a folder and its bytes, to show a refusal changed nothing. */
function snapshot(dir: string): Map<string, string> {
  return new Map(
    readdirSync(dir)
      .sort()
      .map((f) => [f, readFileSync(join(dir, f)).toString('hex')]),
  );
}

test(
  'a damaged write-ahead log is refused before LevelDB drops it, naming the log and round 3; nothing is changed, and repair says round 3 is lost',
  { timeout: 120_000 },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'fedk-wal-'));
    try {
      const dir = join(root, 'store');
      await buildThreeRounds(dir, { lastInLog: true });
      const log = readdirSync(dir).find((f) => f.endsWith('.log'));
      assert.ok(log);
      const bytes = readFileSync(join(dir, log));
      const at = bytes.indexOf('round/0000000003');
      assert.ok(at > 0, 'round 3 is in the log');
      bytes[at + 40] ^= 0x04;
      writeFileSync(join(dir, log), bytes);
      const before = snapshot(dir);
      await assert.rejects(LevelFederationStore.open(dir), (err: Error) => {
        assert.match(err.message, new RegExp(`write-ahead log ${log} is damaged at byte \\d+ \\(a record fails its checksum\\)`));
        assert.match(err.message, /round 3, which opening it as it is would lose/);
        assert.match(err.message, /nothing was changed/);
        return true;
      });
      assert.deepEqual(snapshot(dir), before, 'the refused store is exactly as it was');
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', '..', 'cli', 'main.ts'), 'server', 'repair', '--store', dir], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      const out = `${r.stdout}${r.stderr}`;
      assert.equal(r.status, 0, out);
      assert.match(out, /kept rounds 1\.\.2; lost round 3/);
      assert.match(out, new RegExp(`write-ahead log ${log} is damaged`));
      const store = await LevelFederationStore.open(dir);
      try {
        assert.equal((await store.loadState())?.round, 2);
      } finally {
        await store.close();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
);
