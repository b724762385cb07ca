// Client sampling. The server draws each round's clients with a key from its secret (samplingKey,
// sampleClientsWithKey): no one can tell a round's sample before it starts, and its record keeps the key,
// so the sample is reproduced afterwards. sampleClients, seeded by the public federation seed, round and
// attempt, replays a run where nothing is at stake (the study's simulated federations).
import { createHash, createHmac } from 'node:crypto';

function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

/** Picks min(m, candidates) clients without replacement; candidates are sorted first. */
export function sampleClients(candidates: readonly string[], m: number, federationSeed: number, round: number, attempt: number): string[] {
  const pool = [...candidates].sort();
  const rand = splitmix32(Math.imul(federationSeed ^ 0x51ed270b, 0x2c1b3c6d) ^ Math.imul(round, 0x297a2d39) ^ Math.imul(attempt + 1, 0x68e31da4));
  const n = Math.min(m, pool.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(rand() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, n);
}

/** Bytes of the server's sampling secret (FederationStore.loadSecret). */
export const SAMPLING_SECRET_BYTES = 32;

/**
 * The key that draws round `round`'s attempt `attempt`: HMAC-SHA256(secret, "fedkseed-sample" ‖ round ‖
 * attempt). Without the secret no one can compute the key of a round to come; a round's record keeps
 * its key, so the sample it drew is reproduced afterwards without revealing the secret.
 */
export function samplingKey(secret: Uint8Array, round: number, attempt: number): Buffer {
  const at = Buffer.alloc(8);
  at.writeUInt32LE(round >>> 0, 0);
  at.writeUInt32LE(attempt >>> 0, 4);
  return createHmac('sha256', secret).update('fedkseed-sample').update(at).digest();
}

/**
 * Picks min(m, candidates) clients without replacement by a Fisher–Yates shuffle of the sorted candidates,
 * each index drawn uniformly (by rejection) from the stream SHA-256(key ‖ counter).
 */
export function sampleClientsWithKey(candidates: readonly string[], m: number, key: Uint8Array): string[] {
  const pool = [...candidates].sort();
  let block = Buffer.alloc(0);
  let used = 0;
  let counter = 0;
  const next32 = (): number => {
    if (used + 4 > block.length) {
      const c = Buffer.alloc(4);
      c.writeUInt32LE(counter++);
      block = createHash('sha256').update(key).update(c).digest();
      used = 0;
    }
    const x = block.readUInt32LE(used);
    used += 4;
    return x;
  };
  const below = (n: number): number => {
    const limit = Math.floor(2 ** 32 / n) * n;
    for (;;) {
      const x = next32();
      if (x < limit) return x % n;
    }
  };
  const n = Math.min(m, pool.length);
  for (let i = 0; i < n; i++) {
    const j = i + below(pool.length - i);
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, n);
}
