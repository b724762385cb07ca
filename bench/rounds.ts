// What a federation round's coefficient change costs a client with each way of keeping S, side by side in
// one run: 'held' (S in memory), 'file' (S in a float64 scratch file, streamed: the round's seeds plus a
// read and a write of S) and 'coefficients' (S recomputed from every applied seed), under each generator
// ('iid': a hash per parameter and seed; 'rank1': a product of thin matrices per tensor). Each round
// applies a change over fresh seeds to three sets of the same weights, then one local pass and a reset to
// the replica, and checks that the three replicas have the same bits. From the measured kernel and file
// rates it projects a round at 1.3B parameters once K seeds are applied.
// `fedkseed bench rounds` calls runRoundsBench() and prints its report.
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createRng } from '../trainer/data/rng';
import type { Generator } from '../protocol';
import { seedKey } from '../trainer/zo/generator';
import { createKernels } from '../trainer/zo/kernels-select';
import { ParameterSet, SUMS_MODES, type SumsMode, type TensorInit } from '../trainer/zo/parameters';
import { matrixBlocks, rank1Accumulate } from '../trainer/zo/rank1';
import { defaultSpillDir, ScratchFile } from '../trainer/zo/replica-file';
import { median } from './zo-step';

export interface RoundsBenchOptions {
  /** Parameters of the set (default 4M; tensors of 2^20). */
  readonly params?: number;
  /** Rounds, each a coefficient change (default 8). */
  readonly rounds?: number;
  /** Seeds a round's change brings (default 150: 3 clients × τ 50). */
  readonly seedsPerRound?: number;
  /** Seed indices are drawn from 0..K−1, so applied seeds never exceed K (default 4096), as in a federation. */
  readonly k?: number;
  /** Parameters of the projection (default 1,315.7M: the GPT-2 builder's gpt-1.3b). */
  readonly projectParams?: number;
  /** Folder of the S and replica files (default: the engine's, defaultSpillDir()). */
  readonly spillDir?: string;
  /** Generators measured, side by side (default both). */
  readonly generators?: readonly Generator[];
  /** Ways of keeping S measured (default all three; a set per way, so fewer fit larger sets). */
  readonly modes?: readonly SumsMode[];
  /** Split passes: the sets run on both threads, a worker computing every other piece of S (default off). */
  readonly parallel?: boolean;
  readonly log?: (line: string) => void;
}

export interface RoundsBenchRow {
  readonly round: number;
  /** Seeds with a non-zero coefficient after the round. */
  readonly appliedSeeds: number;
  /** Milliseconds of applyCoefficientDelta, by sums mode (the modes measured). */
  readonly applyMs: Readonly<Partial<Record<SumsMode, number>>>;
  /** Milliseconds of resetToBase after one local pass, by sums mode. */
  readonly resetMs: Readonly<Partial<Record<SumsMode, number>>>;
  readonly coefficientsOverFile: number;
  /** Whether the three sets had the same digest after the change and after the reset (one digest in all). */
  readonly sameBits: boolean;
}

export interface RoundsBenchRates {
  /** The accumulator of the generator, one thread (S += Σ C_j·value_j over a piece). */
  readonly seedParamsPerSecond: number;
  /** The materialise kernel (w = fl32(w0 + fl64(−η·2⁻²⁸·S))), parameters per second. */
  readonly materializeParamsPerSecond: number;
  /** Writing and reading a float64 S file piece by piece, MB/s (10^6 bytes; through the page cache). */
  readonly writeMBps: number;
  readonly readMBps: number;
  /** Writing it with fdatasync after each piece: the disk's own rate (an S file past the page cache). */
  readonly diskMBps: number;
}

export interface RoundsProjection {
  readonly params: number;
  readonly appliedSeeds: number;
  readonly seedsPerRound: number;
  /** Seconds of one change, one thread, by sums mode (the S file at the page cache's rates). */
  readonly seconds: Readonly<Record<SumsMode, number>>;
  readonly coefficientsOverFile: number;
  /** The S file read and written at the disk's rate instead (a file larger than the page cache). */
  readonly fileAtDiskSeconds: number;
  readonly coefficientsOverFileAtDisk: number;
}

/** One generator's rounds, rates and projection. */
export interface GeneratorRounds {
  readonly generator: Generator;
  readonly rows: readonly RoundsBenchRow[];
  readonly rates: RoundsBenchRates;
  readonly projection: RoundsProjection;
}

export interface RoundsBenchResult {
  readonly params: number;
  readonly seedsPerRound: number;
  readonly k: number;
  readonly kernel: string;
  /** Whether the sets were split over two threads. */
  readonly parallel: boolean;
  readonly generators: readonly GeneratorRounds[];
}

const PIECE = 1 << 20;
/** Columns of the set's matrices (a 1.3B model's width): each tensor is PIECE / 2048 rows of them. */
const COLUMNS = 2048;
const ETA = 3e-4;
const FEDERATION_SEED = 7;

function model(params: number): TensorInit[] {
  const rng = createRng(12345);
  const inits: TensorInit[] = [];
  for (let t = 0, left = params; left > 0; t++, left -= PIECE) {
    const data = new Float32Array(Math.min(PIECE, left));
    for (let i = 0; i < data.length; i++) data[i] = (rng.nextFloat() - 0.5) * 0.1;
    const dims = data.length % COLUMNS === 0 ? [data.length / COLUMNS, COLUMNS] : [data.length];
    inits.push({ name: `t${String(t).padStart(4, '0')}`, dims, data });
  }
  return inits;
}

const seconds = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e9;

/** The kernels' and the S file's rates, each the median of 3 after a warm-up. */
function measureRates(seedsPerRound: number, spillDir: string, generator: Generator): RoundsBenchRates {
  const kernels = createKernels('auto');
  const blocks = matrixBlocks([{ offset: 0, dims: [PIECE / COLUMNS, COLUMNS] }]);
  const keys = Uint32Array.from({ length: seedsPerRound }, (_, j) => seedKey(FEDERATION_SEED, j));
  const coeffs = Float64Array.from({ length: seedsPerRound }, (_, j) => (j % 7) - 3 || 1);
  const s = new Float64Array(PIECE);
  const w = new Float32Array(PIECE);
  const w0 = new Float32Array(PIECE).fill(0.01);
  const acc: number[] = [];
  const mat: number[] = [];
  for (let r = 0; r < 4; r++) {
    let start = process.hrtime.bigint();
    if (generator === 'rank1') rank1Accumulate(s, 0, blocks, keys, coeffs);
    else kernels.accumulate(s, 0, keys, coeffs);
    if (r > 0) acc.push(seconds(start));
    start = process.hrtime.bigint();
    kernels.materialize(w, w0, s, -ETA / 2 ** 28);
    if (r > 0) mat.push(seconds(start));
  }
  // 32 pieces (256 MiB of S): past a disk's own cache, small beside the page cache.
  const pieces = 32;
  const file = new ScratchFile(spillDir, 'bench-sums', 'f64');
  const writes: number[] = [];
  const reads: number[] = [];
  try {
    for (let r = 0; r < 3; r++) {
      let start = process.hrtime.bigint();
      for (let p = 0; p < pieces; p++) file.write(p * PIECE, s);
      writes.push(seconds(start));
      start = process.hrtime.bigint();
      for (let p = 0; p < pieces; p++) file.read(p * PIECE, s);
      reads.push(seconds(start));
    }
  } finally {
    file.close();
  }
  const bytes = pieces * PIECE * 8;
  const path = join(spillDir, `bench-disk-${process.pid}.f64`);
  const fd = openSync(path, 'w', 0o600);
  const synced: number[] = [];
  try {
    const raw = new Uint8Array(s.buffer);
    for (let r = 0; r < 2; r++) {
      const start = process.hrtime.bigint();
      for (let p = 0; p < pieces; p++) {
        for (let done = 0; done < raw.length;) done += writeSync(fd, raw, done, raw.length - done, p * raw.length + done);
        fdatasyncSync(fd);
      }
      synced.push(seconds(start));
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  return {
    seedParamsPerSecond: (seedsPerRound * PIECE) / median(acc),
    materializeParamsPerSecond: PIECE / median(mat),
    writeMBps: bytes / median(writes) / 1e6,
    readMBps: bytes / median(reads) / 1e6,
    diskMBps: bytes / Math.min(...synced) / 1e6,
  };
}

/**
 * One change at `params` parameters, one thread: the round's seeds (or, with S as coefficients, every
 * applied seed) through the accumulate kernel, one materialise pass, and the files: S read and written
 * (file), the replica written (coefficients).
 */
export function projectRound(rates: RoundsBenchRates, params: number, appliedSeeds: number, seedsPerRound: number): RoundsProjection {
  const accumulate = (seeds: number): number => (seeds * params) / rates.seedParamsPerSecond;
  const materialize = params / rates.materializeParamsPerSecond;
  const s = {
    held: accumulate(seedsPerRound) + materialize,
    file: accumulate(seedsPerRound) + materialize + (8 * params) / 1e6 / rates.readMBps + (8 * params) / 1e6 / rates.writeMBps,
    coefficients: accumulate(appliedSeeds) + materialize + (4 * params) / 1e6 / rates.writeMBps,
  };
  const fileAtDisk = accumulate(seedsPerRound) + materialize + (16 * params) / 1e6 / rates.diskMBps;
  return {
    params,
    appliedSeeds,
    seedsPerRound,
    seconds: s,
    coefficientsOverFile: s.coefficients / s.file,
    fileAtDiskSeconds: fileAtDisk,
    coefficientsOverFileAtDisk: s.coefficients / fileAtDisk,
  };
}

export function runRoundsBench(options: RoundsBenchOptions = {}): RoundsBenchResult {
  const params = options.params ?? 4 << 20;
  const rounds = options.rounds ?? 8;
  const perRound = options.seedsPerRound ?? 150;
  const k = options.k ?? 4096;
  if (perRound > k) throw new RangeError(`${perRound} seeds per round exceed K = ${k}`);
  const spillDir = options.spillDir ?? defaultSpillDir();
  const log = options.log ?? (() => {});
  let kernel = '';
  const generators = (options.generators ?? ['iid', 'rank1']).map((generator) => {
    log(`generator ${generator}:`);
    const run = generatorRounds(generator, params, rounds, perRound, k, spillDir, options.modes ?? SUMS_MODES, options.parallel ?? false, log);
    kernel = run.kernel;
    const rates = measureRates(perRound, spillDir, generator);
    const projection = projectRound(rates, options.projectParams ?? 1_315_700_000, k, perRound);
    return { generator, rows: run.rows, rates, projection };
  });
  return { params, seedsPerRound: perRound, k, kernel, parallel: options.parallel ?? false, generators };
}

function generatorRounds(
  generator: Generator,
  params: number,
  rounds: number,
  perRound: number,
  k: number,
  spillDir: string,
  modes: readonly SumsMode[],
  parallel: boolean,
  log: (line: string) => void,
): { rows: RoundsBenchRow[]; kernel: string } {
  const sets = new Map<SumsMode, ParameterSet>(
    modes.map((sums) => {
      const set = new ParameterSet(model(params), { sums, spillDir, base: 'held', parallelPasses: parallel ? 'on' : 'off' });
      // Split passes run on both threads only while something reads the weights (the engine's session).
      if (parallel) set.bindTo({ bindWeights: () => undefined });
      set.setGenerator(generator);
      return [sums, set];
    }),
  );
  const rows: RoundsBenchRow[] = [];
  const rng = createRng(99);
  try {
    for (let r = 1; r <= rounds; r++) {
      // Fresh seeds while they last (each change the most expensive kind for 'coefficients'), then any of K.
      const seeds: number[] = [];
      for (let n = 0; seeds.length < perRound; n++) {
        const j = (r - 1) * perRound + n < k ? (r - 1) * perRound + n : rng.nextInt(k);
        if (!seeds.includes(j)) seeds.push(j);
      }
      const deltas = seeds.map(() => (rng.nextInt(2_000_001) - 1_000_000) * (1 + rng.nextInt(8)) || 1);
      const applyMs: Partial<Record<SumsMode, number>> = {};
      const resetMs: Partial<Record<SumsMode, number>> = {};
      const digests = new Set<string>();
      for (const [mode, set] of sets) {
        let start = process.hrtime.bigint();
        set.applyCoefficientDelta(FEDERATION_SEED, seeds, deltas, ETA);
        applyMs[mode] = seconds(start) * 1e3;
        digests.add(set.digest());
        set.perturb(seedKey(FEDERATION_SEED, 1_000_000 + r), 1e-3);
        start = process.hrtime.bigint();
        set.resetToBase();
        resetMs[mode] = seconds(start) * 1e3;
        digests.add(set.digest());
      }
      const appliedSeeds = (sets.values().next().value as ParameterSet).appliedCoefficients().size;
      const coefficientsOverFile = (applyMs.coefficients ?? Number.NaN) / (applyMs.file ?? Number.NaN);
      rows.push({ round: r, appliedSeeds, applyMs, resetMs, coefficientsOverFile, sameBits: digests.size === 1 });
      log(`round ${r}: ${appliedSeeds} seeds applied; change ${modes.map((m) => `${m} ${(applyMs[m] as number).toFixed(0)} ms`).join(', ')}`);
    }
  } finally {
    for (const set of sets.values()) set.dispose();
  }
  return { rows, kernel: (sets.values().next().value as ParameterSet).kernel };
}
