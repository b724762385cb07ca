// Seeded client sampling: the same federation seed, round and attempt pick the same clients from the
// same candidate set, so a run can be replayed.
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
