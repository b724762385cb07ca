// A corruption sweep over a stopped server's store: for every file, a cut to half its length and bit
// flips at several offsets, and the loss of CURRENT. Each damaged store is either refused by the
// store's open (with a message naming the store and the damage) or provably harmless: every entry
// reads back identical to the undamaged store's. None is accepted silently. Every refused store is then
// rebuilt from its round history (federation/repair.ts, as `fedkseed server repair` does): where anything
// can be read, the rebuilt state is bit for bit the one the federation had after the last round kept.
import { strict as assert } from 'node:assert';
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

const config: FederationConfig = {
  k: 256, federationSeed: 4, epsilon: 1e-3, eta: 1e-3, tau: 8, batchSize: 1, sampling: 'pro', weighting: 'examples', rounds: 50, clientsPerRound: 2, deadlineMs: 1000,
};
const MODEL_HASH = new Uint8Array(32).fill(3);
const clock: Clock = { now: () => 1_700_000_000_000, setTimer: (): Timer => ({ cancel: () => {} }) };
const outbox: Outbox<string> = { send: () => {}, refuse: () => {}, displace: () => {} };
const settle = async (): Promise<void> => {
  for (let i = 0; i < 8; i++) await new Promise<void>((r) => setImmediate(r));
};

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
  await settle();
  for (let round = 1; round <= 6; round++) {
    for (const [i, id] of ['a', 'b'].entries()) {
      const upload: UploadMessage = {
        type: 'upload', round, examples: 4, lossBeforeSum: 2, lossBeforeCount: 1, lossAfterSum: 1, lossAfterCount: 1, digestRound: round - 1, digest: new Uint8Array(32).fill(round),
        pairs: Array.from({ length: 8 }, (_, j) => ({ seed: (round * 17 + j * 5 + i) % config.k, g: ((j + 1) * (i ? -1 : 1)) / 3 })),
      };
      await engine.upload(id, id, upload);
    }
    await settle();
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
  for (const id of ['a', 'b']) await engine.join(id, { type: 'hello', clientId: id, token: '', modelHash: MODEL_HASH, lastSyncedRound: 3, generatorVersion: 1 });
  await settle();
  for (let round = 4; round <= 6; round++) {
    for (const [i, id] of ['a', 'b'].entries()) {
      await engine.upload(id, id, {
        type: 'upload', round, examples: 4, lossBeforeSum: 2, lossBeforeCount: 1, lossAfterSum: 1, lossAfterCount: 1, digestRound: round - 1, digest: new Uint8Array(32).fill(round),
        pairs: Array.from({ length: 8 }, (_, j) => ({ seed: (round * 17 + j * 5 + i) % config.k, g: ((j + 1) * (i ? -1 : 1)) / 3 })),
      });
    }
    await settle();
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
    assert.ok(readdirSync(pristine).some((f) => f.endsWith('.ldb')), 'a compacted table is part of the sweep');
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
        const message = (err as Error).message;
        if (/the store .* (is damaged|is not a complete store|cannot be opened|cannot be read)/.test(message) && /backup/.test(message)) refused++;
        else silent.push(`${c.name}: unclear refusal: ${message}`);
        if (/round \d+'s record|the state/.test(message)) named++;
        const r = await repaired(dir);
        if (r) {
          rebuilt++;
          if (!sameState(r.state, r.kept === 0 ? null : (history[r.kept] ?? null))) wrongRepairs.push(`${c.name}: the state rebuilt at round ${r.kept} is not the one committed then`);
        }
      } finally {
        if (store) await store.close().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      }
    }
    assert.deepEqual(silent, [], `${silent.length} of ${cases.length} damaged stores were accepted silently`);
    assert.deepEqual(wrongRepairs, []);
    t.diagnostic(`${cases.length} cases: ${refused} refused (${named} naming the round or state vector), ${harmless} harmless; ${rebuilt} rebuilt from their round history, each to a state the federation had`);
    assert.ok(refused > 0 && refused + harmless === cases.length, `refused ${refused}, harmless ${harmless} of ${cases.length}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
