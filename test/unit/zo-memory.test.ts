// The engine's memory-saving forms keep replicas bit-identical: w0 read back from a source instead of
// held, S kept as its integer coefficients (recomputed chunk by chunk, the replica's weights in a scratch
// file for resets) or in a float64 scratch file (streamed, a change adding only its own seeds) instead of
// a float64 per parameter in memory, and a z store over part of the weights. Each is
// compared, digest for digest, with the held form over rounds of random coefficient changes with local
// training in between.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import type { TokenBatch } from '../../trainer/data/batches';
import { ParameterSet, type BaseReader, type ParameterSetOptions, type TensorInit, type WeightConsumer } from '../../trainer/zo/parameters';
import { SeedSampler } from '../../trainer/zo/seed-sampler';
import { type BatchLoss, ZoTrainer } from '../../trainer/zo/zo-trainer';
import { assertSameBits, oddShapedModel } from '../helpers/float-fixtures';

const BATCH: TokenBatch = { inputIds: new BigInt64Array(1), attentionMask: new BigInt64Array(1), labels: new BigInt64Array(1), batch: 1, seq: 1 };

/**
 * The tensors with their values behind sources only (data empty), as a deferred model load gives them;
 * a read fails while `reads.failAt` equals the number of reads made before it.
 */
function sourced(inits: TensorInit[], reads: { count: number; failAt?: number } = { count: 0 }): TensorInit[] {
  return inits.map(({ name, dims, data }) => {
    const values = data.slice();
    const source: BaseReader = {
      read(start, out) {
        if (reads.count === reads.failAt) throw new Error('the model file went away');
        reads.count++;
        out.set(values.subarray(start, start + out.length));
      },
    };
    return { name, dims, data: new Float32Array(0), source };
  });
}

/** A loss reading every weight's bits, as a session does. */
function weightLoss(params: ParameterSet): BatchLoss {
  return {
    async lossSum() {
      let sum = 0;
      for (const t of params.tensors) for (let i = 0; i < t.data.length; i++) sum += t.data[i] * t.data[i] * (1 + (i % 5));
      return { lossSum: sum, tokens: 1 };
    },
  };
}

async function localSteps(params: ParameterSet, round: number, steps = 4): Promise<void> {
  const trainer = new ZoTrainer(params, weightLoss(params), { federationSeed: 31, k: 256, epsilon: 1e-3, eta: 0.02 });
  await trainer.train({ steps, seeds: new SeedSampler(256, round), nextBatch: () => BATCH });
}

/** Random coefficient changes, some undoing earlier ones exactly, as rounds of a federation bring them. */
function randomRounds(count: number, salt: number): { seeds: number[]; deltas: number[] }[] {
  let h = salt >>> 0;
  const next = (): number => (h = (Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0);
  const applied = new Map<number, number>();
  const rounds: { seeds: number[]; deltas: number[] }[] = [];
  for (let r = 0; r < count; r++) {
    const seeds: number[] = [];
    const deltas: number[] = [];
    const n = 1 + (next() % 40);
    for (let i = 0; i < n; i++) {
      const j = next() % 256;
      if (seeds.includes(j)) continue;
      const undo = applied.has(j) && next() % 4 === 0;
      const d = undo ? -(applied.get(j) as number) : ((next() % 2_000_001) - 1_000_000) * (1 + (next() % 50));
      seeds.push(j);
      deltas.push(d);
      applied.set(j, (applied.get(j) ?? 0) + d);
      if (applied.get(j) === 0) applied.delete(j);
    }
    rounds.push({ seeds, deltas });
  }
  return rounds;
}

interface Trace {
  readonly digests: string[];
  readonly final: Float32Array;
}

/**
 * A client's life: rounds of (apply ΔC → digest → local steps → reset → digest), with a digest after the
 * local steps too; returns every digest and the final weights.
 */
async function federate(params: ParameterSet, rounds: { seeds: number[]; deltas: number[] }[]): Promise<Trace> {
  const digests: string[] = [];
  await localSteps(params, 100); // before any coefficient: the reset goes back to w0 itself
  params.resetToBase();
  digests.push(params.digest());
  for (let r = 0; r < rounds.length; r++) {
    params.applyCoefficientDelta(31, rounds[r].seeds, rounds[r].deltas, 3e-4);
    digests.push(params.digest());
    await localSteps(params, r);
    digests.push(params.digest());
    params.resetToBase();
    digests.push(params.digest());
  }
  return { digests, final: params.snapshot() };
}

test("the compact form (w0 from its source, S as coefficients) gives the held form's bits after rounds of random changes", async () => {
  const spill = mkdtempSync(join(tmpdir(), 'fedkseed-replica-'));
  try {
    const rounds = randomRounds(8, 4242);
    const reference = await federate(new ParameterSet(oddShapedModel(3, 99), { base: 'held', sums: 'held' }), rounds);
    assert.equal(
      new Set(reference.digests).size,
      reference.digests.length - rounds.length,
      'every phase changes the weights but the reset right after applying',
    );
    const forms: [string, ParameterSetOptions, boolean][] = [
      ['w0 from source, S held', { sums: 'held' }, true],
      ['w0 held, S as coefficients', { base: 'held', sums: 'coefficients', spillDir: spill }, false],
      ['compact, WASM', { sums: 'coefficients', spillDir: spill }, true],
      ['compact, JS', { kernel: 'js', sums: 'coefficients', spillDir: spill }, true],
      ['compact, weights outside WASM memory', { resident: false, sums: 'coefficients', spillDir: spill }, true],
      ['compact, no z store', { zStore: false, sums: 'coefficients', spillDir: spill }, true],
      ['w0 held, S in a file', { base: 'held', sums: 'file', spillDir: spill }, false],
      ['S in a file, WASM', { sums: 'file', spillDir: spill }, true],
      ['S in a file, JS', { kernel: 'js', sums: 'file', spillDir: spill }, true],
      ['S in a file, weights outside WASM memory', { resident: false, sums: 'file', spillDir: spill }, true],
    ];
    for (const [label, options, fromSource] of forms) {
      const reads = { count: 0 };
      const params = new ParameterSet(fromSource ? sourced(oddShapedModel(3, 99), reads) : oddShapedModel(3, 99), options);
      const trace = await federate(params, rounds);
      assert.deepEqual(trace.digests, reference.digests, label);
      assertSameBits(trace.final, reference.final, label);
      const memory = params.memoryUsage();
      if (fromSource) {
        assert.equal(memory.base, 0, `${label}: no copy of w0`);
        assert.ok(reads.count > 0, `${label}: w0 was read back`);
      }
      if (options.sums === 'coefficients') {
        assert.equal(memory.sums, 0, `${label}: S not held`);
        assert.equal(memory.replicaFile, params.indexSpan * 4);
        assert.equal(memory.sumsFile, 0);
      }
      if (options.sums === 'file') {
        assert.equal(memory.sums, 0, `${label}: S not held`);
        assert.equal(memory.sumsFile, params.indexSpan * 8);
        assert.equal(memory.replicaFile, 0, `${label}: resets read S, not a replica file`);
      }
      params.dispose();
      assert.equal(params.memoryUsage().sumsFile, 0, `${label}: no file once disposed`);
    }
    if (process.platform !== 'win32') assert.deepEqual(readdirSync(spill), [], 'the replica and S files are unlinked once open');
  } finally {
    rmSync(spill, { recursive: true, force: true });
  }
});

test("coefficients taken back to zero leave no stale replica file behind: a reset after them is w0's replica", async () => {
  const spill = mkdtempSync(join(tmpdir(), 'fedkseed-replica-'));
  const held = new ParameterSet(oddShapedModel(2, 3), { base: 'held', sums: 'held' });
  const compact = new ParameterSet(sourced(oddShapedModel(2, 3)), { sums: 'coefficients', spillDir: spill });
  try {
    for (const set of [held, compact]) {
      set.applyCoefficientDelta(31, [1, 2], [500_000, -7], 1e-3);
      set.applyCoefficientDelta(31, [1, 2], [-500_000, 7], 1e-3);
      await localSteps(set, 1);
      set.resetToBase();
    }
    assert.equal(compact.memoryUsage().replicaFile, 0);
    assert.equal(compact.digest(), held.digest());
    assert.deepEqual([...compact.appliedCoefficients()], []);
  } finally {
    compact.dispose();
    rmSync(spill, { recursive: true, force: true });
  }
});

test('the compact form and S in a file, with passes split over a worker, match one thread with everything held', async () => {
  const spill = mkdtempSync(join(tmpdir(), 'fedkseed-replica-'));
  const rounds = randomRounds(4, 77);
  const held = new ParameterSet(oddShapedModel(300, 5), { base: 'held', sums: 'held', parallelPasses: 'off' });
  const a = await federate(held, rounds);
  for (const sums of ['coefficients', 'file'] as const) {
    const compact = new ParameterSet(sourced(oddShapedModel(300, 5)), { sums, spillDir: spill, parallelPasses: 'on', zStore: 0.5 });
    const consumer: WeightConsumer = { bindWeights() {} };
    compact.bindTo(consumer);
    try {
      assert.equal(compact.split, true);
      const b = await federate(compact, rounds);
      assert.deepEqual(b.digests, a.digests, sums);
      assertSameBits(b.final, a.final, `final weights, ${sums}`);
    } finally {
      compact.dispose();
    }
  }
  rmSync(spill, { recursive: true, force: true });
});

test('S in a file: a change that fails half-way (a model file gone) leaves a set that resets to the replica and goes on', async () => {
  const spill = mkdtempSync(join(tmpdir(), 'fedkseed-sums-'));
  const rounds = randomRounds(5, 909);
  const held = new ParameterSet(oddShapedModel(3, 99), { base: 'held', sums: 'held' });
  const reads: { count: number; failAt?: number } = { count: 0 };
  const file = new ParameterSet(sourced(oddShapedModel(3, 99), reads), { sums: 'file', spillDir: spill });
  try {
    for (const set of [held, file]) {
      set.applyCoefficientDelta(31, rounds[0].seeds, rounds[0].deltas, 3e-4);
      await localSteps(set, 0);
    }
    assert.equal(file.memoryUsage().sumsFile, file.indexSpan * 8);
    // The third tensor's w0 cannot be read: S of the first two tensors is already written back.
    reads.failAt = reads.count + 2;
    assert.throws(() => file.applyCoefficientDelta(31, rounds[1].seeds, rounds[1].deltas, 3e-4), /went away/);
    reads.failAt = undefined;
    held.applyCoefficientDelta(31, rounds[1].seeds, rounds[1].deltas, 3e-4);
    assert.deepEqual([...file.appliedCoefficients()], [...held.appliedCoefficients()], 'C is the new one');
    assert.equal(file.memoryUsage().sumsFile, 0, 'the S file written in part is dropped');
    file.resetToBase();
    assert.equal(file.digest(), held.digest(), 'the reset recomputes S from C: the replica of the new C');
    assert.equal(file.memoryUsage().sumsFile, file.indexSpan * 8, 'and writes a new S file');
    // A reset that fails (nothing written to S) keeps the file.
    await localSteps(file, 7);
    reads.failAt = reads.count + 1;
    assert.throws(() => file.resetToBase(), /went away/);
    reads.failAt = undefined;
    assert.equal(file.memoryUsage().sumsFile, file.indexSpan * 8);
    file.resetToBase();
    assert.equal(file.digest(), held.digest());
    for (const round of rounds.slice(2)) {
      for (const set of [held, file]) {
        set.applyCoefficientDelta(31, round.seeds, round.deltas, 3e-4);
        await localSteps(set, 3);
        set.resetToBase();
      }
      assert.equal(file.digest(), held.digest());
    }
  } finally {
    file.dispose();
    held.dispose();
  }
  if (process.platform !== 'win32') assert.deepEqual(readdirSync(spill), [], 'no S file left behind, the dropped one included');
  rmSync(spill, { recursive: true, force: true });
});

test('S in a file: C back to zero drops the file, rebuildFromBase drops it, and a new change starts a new one', () => {
  const spill = mkdtempSync(join(tmpdir(), 'fedkseed-sums-'));
  const held = new ParameterSet(oddShapedModel(2, 3), { base: 'held', sums: 'held' });
  const file = new ParameterSet(sourced(oddShapedModel(2, 3)), { sums: 'file', spillDir: spill });
  try {
    for (const set of [held, file]) {
      set.applyCoefficientDelta(31, [1, 2], [500_000, -7], 1e-3);
      set.applyCoefficientDelta(31, [1, 2], [-500_000, 7], 1e-3);
    }
    assert.equal(file.memoryUsage().sumsFile, 0);
    assert.equal(file.digest(), held.digest());
    for (const set of [held, file]) set.applyCoefficientDelta(31, [9], [123_456], 1e-3);
    assert.equal(file.memoryUsage().sumsFile, file.indexSpan * 8);
    assert.equal(file.digest(), held.digest());
    for (const set of [held, file]) {
      set.rebuildFromBase();
      set.perturb(4, 0.2);
      set.resetToBase();
    }
    assert.equal(file.memoryUsage().sumsFile, 0, 'rebuildFromBase drops the S file');
    assert.equal(file.digest(), held.digest());
    for (const set of [held, file]) set.applyCoefficientDelta(31, [9, 10], [5, -5], 1e-3);
    assert.equal(file.digest(), held.digest());
  } finally {
    file.dispose();
  }
  if (process.platform !== 'win32') assert.deepEqual(readdirSync(spill), [], 'the S file is unlinked once open');
  rmSync(spill, { recursive: true, force: true });
});

test('a z store over part of the weights trains to the bits of a full store and of none, on one thread and split', async () => {
  const train = async (options: ParameterSetOptions, bind: boolean): Promise<string> => {
    const params = new ParameterSet(oddShapedModel(300, 11), options);
    if (bind) params.bindTo({ bindWeights() {} });
    try {
      await localSteps(params, 1, 9);
      params.applyCoefficientDelta(31, [3, 4], [70_000, -1], 0.1);
      await localSteps(params, 2, 5);
      return params.digest();
    } finally {
      params.dispose();
    }
  };
  const reference = await train({ zStore: false }, false);
  for (const share of [0, 0.3, 0.5, 1]) {
    assert.equal(await train({ zStore: share }, false), reference, `share ${share}, one thread`);
    assert.equal(await train({ zStore: share, parallelPasses: 'on' }, true), reference, `share ${share}, split over a worker`);
    assert.equal(await train({ zStore: share, kernel: 'js' }, false), reference, `share ${share}, JS`);
  }
  const half = new ParameterSet(oddShapedModel(300, 11), { zStore: 0.5 });
  await localSteps(half, 1, 1);
  const stored = half.memoryUsage().zStore / 2;
  assert.ok(stored > 0 && stored < half.indexSpan && stored % 8192 === 0, `a partial store covers whole chunks (${stored} of ${half.indexSpan})`);
});

test('a set built from sources fills its own memory from them and holds no copy until something needs one', () => {
  const reads = { count: 0 };
  const fromData = new ParameterSet(oddShapedModel(2, 8));
  const fromSources = new ParameterSet(sourced(oddShapedModel(2, 8), reads));
  assert.equal(fromSources.digest(), fromData.digest());
  assert.equal(reads.count, fromSources.tensors.length, 'each tensor read once');
  assert.equal(fromSources.memoryUsage().base, 0);
  fromSources.perturb(123, 0.5);
  assert.equal(fromSources.memoryUsage().base, 0, 'a pass takes no copy: w0 is read back');
  fromSources.resetToBase();
  assert.equal(fromSources.digest(), fromData.digest(), 'reset reads w0 back');
  // Without sources, w0 is copied at the first change, as before.
  fromData.perturb(123, 0.5);
  assert.equal(fromData.memoryUsage().base, fromData.parameterCount * 4);
  const deferredWithout = oddShapedModel().map((t) => ({ ...t, data: new Float32Array(0) }));
  assert.throws(() => new ParameterSet(deferredWithout), /do not match/);
});

test('with split passes the worker computes every other piece of S, whole pieces and tails, to the same bits', () => {
  const spill = mkdtempSync(join(tmpdir(), 'fedkseed-replica-'));
  const wave = (n: number, v: number): Float32Array => Float32Array.from({ length: n }, (_, i) => v * Math.sin(i));
  // Two tensors past the 2^20-element piece, so pieces of full length and tails both go to the worker.
  const model = (): TensorInit[] => [
    ...oddShapedModel(30, 5),
    { name: 'zz.a', dims: [2_300_000], data: wave(2_300_000, 0.1) },
    { name: 'zz.b', dims: [2_100_001], data: wave(2_100_001, 0.2) },
  ];
  const compact = new ParameterSet(sourced(model()), { sums: 'coefficients', parallelPasses: 'on', spillDir: spill });
  const file = new ParameterSet(sourced(model()), { sums: 'file', parallelPasses: 'on', spillDir: spill });
  const held = new ParameterSet(model(), { sums: 'held', base: 'held' });
  try {
    assert.equal(compact.split, true);
    assert.equal(file.split, true);
    for (const set of [compact, file, held]) {
      set.perturb(5, 0.1);
      set.applyCoefficientDelta(3, [1, 2, 3], [100_000, -5, 77], 1e-3);
      set.perturb(6, 0.1);
      set.resetToBase();
      set.applyCoefficientDelta(3, [4, 1], [9, -100_000], 1e-3);
    }
    assert.equal(compact.digest(), held.digest());
    assert.equal(file.digest(), held.digest(), 'S in a file, the worker adding to the pieces it is given');
    assert.equal(compact.memoryUsage().scratch, (4 + 8 + 8) * 2 ** 20, "w0 and S pieces here, and the worker's S piece back, kept for the next change");
  } finally {
    compact.dispose();
    file.dispose();
    rmSync(spill, { recursive: true, force: true });
  }
});

test(
  'past 4 GiB of lower range a set still splits its passes, with a smaller resident range',
  { skip: totalmem() < 16 * 2 ** 30 ? 'reserves ~10 GiB of address space (untouched); this machine has less than 16 GiB' : false },
  () => {
    // 2.4B parameters behind sources that write nothing: the pages are reserved, never touched.
    const inits: TensorInit[] = Array.from({ length: 48 }, (_, i) => ({
      name: `t${String(i).padStart(2, '0')}`,
      dims: [50_000_000],
      data: new Float32Array(0),
      source: { read() {} },
    }));
    const set = new ParameterSet(inits, { parallelPasses: 'auto', zStore: 0 });
    try {
      assert.equal(set.resident, true, 'the lower range lives in the WASM memory');
      assert.equal(set.split, true, 'the upper range goes to the worker');
      const resident = set.tensors.filter((t) => t.data.buffer === set.tensors[0].data.buffer).length;
      assert.ok(resident >= 12 && resident < 22, `${resident} of 48 tensors resident (at most 4 GiB, at least a quarter)`);
    } finally {
      set.dispose();
    }
  },
);
