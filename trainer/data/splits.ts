// Deterministic splits: train / held-out by hash, and examples → clients (by group, or a
// Dirichlet label skew over groups). All of it depends only on the data and a seed.
import type { Example } from './examples';
import { fmix32 } from '../util/hash32';
import { type Rng, createRng, fnv1a32, shuffleInPlace } from './rng';

/** A key's position in [0, 1), stable across runs and platforms. */
// fmix32 spreads FNV's weak low-order mixing over all 32 bits.
export function hashUnit(key: string, salt = ''): number {
  return fmix32(fnv1a32(salt + key)) / 0x100000000;
}

export interface TrainHeldOut<T> {
  readonly train: T[];
  readonly heldOut: T[];
}

/**
 * An example is held out when hashUnit(splitKey) < fraction: all windows of a file fall on the same
 * side, and adding data never moves an existing example across the split.
 *
 * Small data is the exception: eight files at 0.1 often hash all to the training side. So when
 * 0 < fraction < 1, each side keeps at least one split key (the keys nearest the cut move across), and
 * a dataset of a single key (one file) is split by window instead. Both rules keep the held-out set
 * growing with the fraction. Only a dataset of one example has nothing to hold out.
 */
export function splitTrainHeldOut<T extends Pick<Example, 'id' | 'splitKey'>>(examples: readonly T[], fraction: number, salt = ''): TrainHeldOut<T> {
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`held-out fraction must be in [0, 1], got ${fraction}`);
  const byKey = new Set(examples.map((e) => e.splitKey)).size > 1;
  const unitOf = (e: T) => (byKey ? e.splitKey : e.id);
  // Units in order of their hash: the held-out set is always a prefix of this order.
  const units = [...new Set(examples.map(unitOf))]
    .map((unit) => ({ unit, h: hashUnit(unit, salt) }))
    .sort((a, b) => a.h - b.h || (a.unit < b.unit ? -1 : a.unit > b.unit ? 1 : 0));
  const most = fraction < 1 ? units.length - 1 : units.length;
  const least = Math.min(fraction > 0 ? 1 : 0, most);
  const count = Math.max(least, Math.min(most, units.filter((u) => u.h < fraction).length));
  const held = new Set(units.slice(0, count).map((u) => u.unit));
  const train: T[] = [];
  const heldOut: T[] = [];
  for (const e of examples) (held.has(unitOf(e)) ? heldOut : train).push(e);
  return { train, heldOut };
}

function sortedGroups(examples: readonly Pick<Example, 'group'>[]): string[] {
  return [...new Set(examples.map((e) => e.group))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export interface GroupSplitOptions {
  /** Number of clients (default: number of groups / groupsPerClient, rounded down). */
  clients?: number;
  /**
   * Groups each client holds; clients × groupsPerClient groups are dealt and any others left out.
   * Default: with `clients` given, every group, dealt so that the clients' counts differ by at most
   * one; else 1. Groups are never shared between clients.
   */
  groupsPerClient?: number;
  seed: number;
}

/**
 * Pathological non-IID split: each client gets whole groups (e.g. one Natural Instructions task
 * per client). Groups are shuffled with the seed, then dealt out in order, in consecutive runs.
 */
export function splitByGroup<T extends Pick<Example, 'group'>>(examples: readonly T[], options: GroupSplitOptions): T[][] {
  const groups = shuffleInPlace(sortedGroups(examples), createRng(options.seed));
  const per = options.groupsPerClient;
  const clients = options.clients ?? Math.floor(groups.length / (per ?? 1));
  if (per !== undefined && (!Number.isInteger(per) || per < 1)) throw new RangeError(`groupsPerClient must be a positive integer, got ${per}`);
  const dealt = per === undefined ? groups.length : clients * per;
  if (!Number.isInteger(clients) || clients < 1 || dealt > groups.length || dealt < clients) {
    throw new RangeError(`cannot give ${clients} clients ${per === undefined ? 'a group' : `${per} group(s)`} each: the data has ${groups.length} group(s)`);
  }
  // Group i of the dealt ones goes to client ⌊i · clients / dealt⌋: runs of equal length ±1.
  const owner = new Map<string, number>();
  groups.slice(0, dealt).forEach((g, i) => owner.set(g, Math.floor((i * clients) / dealt)));
  const shards: T[][] = Array.from({ length: clients }, () => []);
  for (const e of examples) {
    const c = owner.get(e.group);
    if (c !== undefined) shards[c].push(e);
  }
  return shards;
}

function standardNormal(rng: Rng): number {
  // Box–Muller; 1 - u keeps the logarithm finite.
  const u = 1 - rng.nextFloat();
  const v = rng.nextFloat();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Gamma(shape, 1) by Marsaglia–Tsang; shape < 1 through the U^(1/shape) boost. */
export function sampleGamma(shape: number, rng: Rng): number {
  if (!(shape > 0)) throw new RangeError(`gamma shape must be positive, got ${shape}`);
  if (shape < 1) return sampleGamma(shape + 1, rng) * Math.pow(1 - rng.nextFloat(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = standardNormal(rng);
    const v0 = 1 + c * x;
    if (v0 <= 0) continue;
    const v = v0 * v0 * v0;
    const u = 1 - rng.nextFloat();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

/** Symmetric Dirichlet(alpha) over `k` outcomes. */
export function sampleDirichlet(alpha: number, k: number, rng: Rng): number[] {
  for (;;) {
    const g = Array.from({ length: k }, () => sampleGamma(alpha, rng));
    const sum = g.reduce((a, b) => a + b, 0);
    // Tiny alphas can underflow every draw to 0; draw again rather than divide by zero.
    if (sum > 0) return g.map((x) => x / sum);
  }
}

export interface DirichletSplitOptions {
  clients: number;
  /** Concentration: small alpha → each client sees few categories (0.5 and 5.0 in the paper). */
  alpha: number;
  seed: number;
  /** Every client must get at least this many examples (default 1); the draw is repeated until so. */
  minPerClient?: number;
  /** Attempts before giving up with an error (default 1000). */
  maxAttempts?: number;
}

/**
 * Label-skew split: for each category (group), its examples are shuffled and cut among the clients
 * in proportions drawn from Dirichlet(alpha). Whole draws are repeated until every client has at
 * least minPerClient examples, as in the usual FL benchmark recipe.
 */
export function splitDirichlet<T extends Pick<Example, 'group'>>(examples: readonly T[], options: DirichletSplitOptions): T[][] {
  const { clients, alpha } = options;
  const minPer = options.minPerClient ?? 1;
  if (!Number.isInteger(clients) || clients < 1) throw new RangeError(`clients must be a positive integer, got ${clients}`);
  if (clients * minPer > examples.length) {
    throw new RangeError(`${examples.length} examples cannot give ${clients} clients ${minPer} each`);
  }
  const byGroup = new Map<string, T[]>();
  for (const g of sortedGroups(examples)) byGroup.set(g, []);
  for (const e of examples) byGroup.get(e.group)?.push(e);

  const rng = createRng(options.seed);
  const attempts = options.maxAttempts ?? 1000;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const shards: T[][] = Array.from({ length: clients }, () => []);
    for (const members of byGroup.values()) {
      const shuffled = shuffleInPlace([...members], rng);
      const p = sampleDirichlet(alpha, clients, rng);
      let acc = 0;
      let from = 0;
      for (let c = 0; c < clients; c++) {
        acc += p[c];
        // Cut points floor(cumsum · n); the last client takes the remainder, so nothing is lost.
        const to = c === clients - 1 ? shuffled.length : Math.min(shuffled.length, Math.floor(acc * shuffled.length));
        for (let i = from; i < to; i++) shards[c].push(shuffled[i]);
        from = Math.max(from, to);
      }
    }
    if (shards.every((s) => s.length >= minPer)) return shards;
  }
  throw new Error(`no Dirichlet(${alpha}) split gave all ${clients} clients ${minPer} example(s) in ${attempts} attempts`);
}
