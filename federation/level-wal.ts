// Checks LevelDB's write-ahead logs (*.log) before the store opens them. LevelDB's recovery drops a
// damaged log record, and the rest of its 32 KiB block, without telling its caller (paranoid_checks is
// not exposed by classic-level) and then rewrites the log as a table: so a damaged log must be found
// before LevelDB opens the folder, while the operator can still be told what opening it would lose.
// The framing is LevelDB's log format (doc/log_format.md): 32 KiB blocks of records, each with a masked
// CRC-32C of its type and data, a length and a type (full, first, middle, last).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const BLOCK = 32768;
const HEADER = 7;
const FULL = 1;
const FIRST = 2;
const MIDDLE = 3;
const LAST = 4;
const MASK_DELTA = 0xa282ead8;

// CRC-32C (Castagnoli): node:zlib's crc32 is the IEEE polynomial, and no maintained package is a dependency here.
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC32C_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** LevelDB's stored form of a CRC: rotated and offset, so a CRC of data holding CRCs is not degenerate. */
export function unmask(masked: number): number {
  const rot = (masked - MASK_DELTA) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
}

/** One damaged spot in a write-ahead log, and what LevelDB's recovery would drop because of it. */
export interface WalDamage {
  readonly file: string;
  /** Where the damaged record starts, in bytes. */
  readonly offset: number;
  readonly reason: string;
  /** The bytes LevelDB would skip: a damaged record to the end of its block, or a fragment out of sequence. */
  readonly dropped: readonly [number, number];
  /** Round records whose keys appear in the dropped bytes (their writes would be lost). */
  readonly rounds: readonly number[];
}

/** Rounds named by round-record keys in raw bytes (a damaged record's keys are usually still legible). */
function roundsIn(bytes: Buffer): number[] {
  const found = new Set<number>();
  for (const m of bytes.toString('latin1').matchAll(/round\/(\d{10})/g)) found.add(Number(m[1]));
  return [...found].sort((a, b) => a - b);
}

/**
 * The damage in one log file's bytes, as LevelDB's reader would report it. A record cut off at the end
 * of the file is not damage: a writer killed mid-record leaves one, and its write never returned.
 */
export function scanWal(file: string, bytes: Buffer): WalDamage[] {
  const out: WalDamage[] = [];
  let inFragments = false;
  let fragmentStart = 0;
  for (let block = 0; block < bytes.length; block += BLOCK) {
    const end = Math.min(block + BLOCK, bytes.length);
    let at = block;
    const damaged = (reason: string, start: number, stop = end): void => {
      out.push({ file, offset: start, reason, dropped: [start, stop], rounds: roundsIn(bytes.subarray(start, stop)) });
    };
    while (end - at >= HEADER) {
      const length = bytes.readUInt16LE(at + 4);
      const type = bytes[at + 6];
      if (type === 0 && length === 0) break; // zero padding (a preallocated block): nothing more in it
      if (at + HEADER + length > end) {
        if (end === bytes.length) return out; // cut off at the end of the file
        damaged('a record longer than its block (bad record length)', at);
        break;
      }
      const expected = unmask(bytes.readUInt32LE(at));
      if (crc32c(bytes.subarray(at + 6, at + HEADER + length)) !== expected) {
        damaged('a record fails its checksum', at);
        inFragments = false;
        break;
      }
      if (type === FULL || type === FIRST) {
        if (inFragments) damaged('a record begins inside another (partial record without its end)', fragmentStart, at);
        inFragments = type === FIRST;
        fragmentStart = at;
      } else if (type === MIDDLE || type === LAST) {
        if (!inFragments) damaged('a record continues one that never began (missing start of a fragmented record)', at, at + HEADER + length);
        inFragments = type === MIDDLE && inFragments;
      } else {
        damaged(`a record of unknown type ${type}`, at);
        inFragments = false;
        break;
      }
      at += HEADER + length;
    }
  }
  return out;
}

/** The damage in every write-ahead log of the LevelDB folder `path`, oldest log first. */
export function damagedWal(path: string): WalDamage[] {
  const logs = readdirSync(path)
    .filter((f) => /^\d+\.log$/.test(f))
    .sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
  return logs.flatMap((f) => scanWal(f, readFileSync(join(path, f))));
}

/** The damage in words, naming the file, where, and the rounds whose writes it holds. */
export function describeWalDamage(damage: readonly WalDamage[]): string {
  return damage
    .map((d) => {
      const rounds =
        d.rounds.length === 0
          ? ''
          : `; it holds the writes of ${d.rounds.length === 1 ? `round ${d.rounds[0]}` : `rounds ${d.rounds.join(', ')}`}, which opening it as it is would lose`;
      return `its write-ahead log ${d.file} is damaged at byte ${d.offset} (${d.reason}): LevelDB would drop bytes ${d.dropped[0]}..${d.dropped[1]}${rounds}`;
    })
    .join('; ');
}
