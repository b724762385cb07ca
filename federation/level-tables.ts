// Checks every block of LevelDB's tables (*.ldb, *.sst) against its CRC before the store opens them.
// classic-level does not expose verify_checksums or paranoid_checks, so LevelDB reads a table's index
// and Bloom filter blocks unchecked: a damaged filter makes a read by key miss an entry (or find an
// older version of it in an older table) that a scan reads right, and a damaged index can abort the
// process. The layout is LevelDB's table format (doc/table_format.md): data blocks, the filter block,
// the metaindex, the index, then a 48-byte footer; every block is followed by a type byte and a masked
// CRC-32C over the block and that byte.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c, unmask } from './level-wal';

const FOOTER = 48;
const TRAILER = 5;
const MAGIC = Buffer.from([0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb]);

/** One table that fails a check: `what` names the block and why. */
export interface TableDamage {
  readonly file: string;
  readonly what: string;
}

class Damaged extends Error {}

function varint(bytes: Buffer, at: number, end: number): [number, number] {
  let value = 0;
  for (let shift = 0; shift < 64; shift += 7) {
    if (at >= end) throw new Damaged('a block handle runs past its block');
    const b = bytes[at++];
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [value, at];
  }
  throw new Damaged('a block handle is not a varint');
}

interface Handle {
  readonly offset: number;
  readonly size: number;
}

function handle(bytes: Buffer, at: number, end: number): [Handle, number] {
  const [offset, a] = varint(bytes, at, end);
  const [size, b] = varint(bytes, a, end);
  return [{ offset, size }, b];
}

/** The block's bytes once its CRC matches; whether it is stored uncompressed. */
function block(bytes: Buffer, h: Handle, limit: number, name: string): { raw: boolean } {
  if (h.offset + h.size + TRAILER > limit) throw new Damaged(`its ${name} block lies beyond the table's blocks`);
  const crc = unmask(bytes.readUInt32LE(h.offset + h.size + 1));
  if (crc32c(bytes.subarray(h.offset, h.offset + h.size + 1)) !== crc) throw new Damaged(`its ${name} block at byte ${h.offset} fails its checksum`);
  return { raw: bytes[h.offset + h.size] === 0 };
}

/** The values of an uncompressed block's entries (every key restarts in index and metaindex blocks). */
function entries(bytes: Buffer, h: Handle, name: string): { key: string; value: Buffer }[] {
  const end = h.offset + h.size;
  if (h.size < 4) throw new Damaged(`its ${name} block is too short`);
  const restarts = bytes.readUInt32LE(end - 4);
  const stop = end - 4 - 4 * restarts;
  if (stop < h.offset) throw new Damaged(`its ${name} block's restart array is out of range`);
  const out: { key: string; value: Buffer }[] = [];
  let key = Buffer.alloc(0);
  for (let at = h.offset; at < stop;) {
    let shared: number, unshared: number, length: number;
    [shared, at] = varint(bytes, at, stop);
    [unshared, at] = varint(bytes, at, stop);
    [length, at] = varint(bytes, at, stop);
    if (shared > key.length || at + unshared + length > stop) throw new Damaged(`its ${name} block holds an entry out of range`);
    key = Buffer.concat([key.subarray(0, shared), bytes.subarray(at, at + unshared)]);
    out.push({ key: key.toString('latin1'), value: bytes.subarray(at + unshared, at + unshared + length) });
    at += unshared + length;
  }
  return out;
}

/** What is wrong with one table's bytes, or null. A compressed index or metaindex is checked itself, its blocks are left to the scan. */
export function checkTable(bytes: Buffer): string | null {
  try {
    if (bytes.length < FOOTER) throw new Damaged('it is shorter than its footer');
    const foot = bytes.length - FOOTER;
    if (!bytes.subarray(bytes.length - 8).equals(MAGIC)) throw new Damaged("its footer's magic number is wrong");
    const [meta, at] = handle(bytes, foot, bytes.length - 8);
    const [index] = handle(bytes, at, bytes.length - 8);
    if (block(bytes, meta, foot, 'metaindex').raw) {
      for (const e of entries(bytes, meta, 'metaindex')) {
        if (e.key.startsWith('filter.')) block(bytes, handle(e.value, 0, e.value.length)[0], meta.offset, 'filter');
      }
    }
    if (block(bytes, index, foot, 'index').raw) {
      for (const e of entries(bytes, index, 'index')) block(bytes, handle(e.value, 0, e.value.length)[0], meta.offset, 'data');
    }
    return null;
  } catch (err) {
    if (err instanceof Damaged) return err.message;
    throw err;
  }
}

/** The tables of the LevelDB folder `path` that fail a check. */
export function damagedTables(path: string): TableDamage[] {
  const out: TableDamage[] = [];
  for (const file of readdirSync(path)
    .filter((f) => /^\d+\.(ldb|sst)$/.test(f))
    .sort()) {
    const what = checkTable(readFileSync(join(path, file)));
    if (what !== null) out.push({ file, what });
  }
  return out;
}
