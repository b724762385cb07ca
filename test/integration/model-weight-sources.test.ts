// A deferred load reads nothing but the layout: each weight stored as raw floats (inline in the .onnx, in
// an external-data file, float16) gets a reader of its bytes in the file, the engine's ParameterSet fills
// its own memory from them and reads w0 back from them, with the bits of an ordinary load. A file changed
// after loading is refused instead of read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportModel } from '../../trainer/model/export';
import { loadModel, ModelError, writeGpt2, type Gpt2Config } from '../../trainer/model';
import { ParameterSet } from '../../trainer/zo/parameters';
import { openEngine } from '../../trainer/engine';
import { EngineLocalTrainer } from '../../trainer/client/engine-trainer';
import type { FederationConfig } from '../../protocol';
import { weightMap } from './model-helpers';

const TINY: Gpt2Config = { vocab: 97, ctx: 32, dModel: 24, layers: 2, heads: 3, mlpRatio: 4, tiedEmbeddings: true, dtype: 'float32', seed: 3 };

test('deferred loads of inline, external and float16 weights read the bits an ordinary load decodes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedkseed-sources-'));
  try {
    const inline = join(dir, 'inline.onnx');
    writeGpt2(TINY, inline);
    const half = join(dir, 'half.onnx');
    writeGpt2({ ...TINY, dtype: 'float16' }, half);
    const external = join(dir, 'external.onnx');
    const loaded = await loadModel(inline);
    exportModel(loaded, weightMap(loaded.weights), external, { externalDataThreshold: 0 });

    for (const path of [inline, half, external]) {
      const full = await loadModel(path);
      const deferred = await loadModel(path, { defer: true });
      assert.equal(deferred.identity, full.identity, `${path}: same identity`);
      for (const w of deferred.weights) {
        assert.ok(w.source, `${path}: ${w.name} has a source`);
        assert.equal(w.data.length, 0, `${path}: ${w.name} was not extracted`);
      }
      if (path === external)
        assert.ok(
          deferred.weights.every((w) => w.source?.file.path.endsWith('.data')),
          'read from the external-data file',
        );
      const reference = new ParameterSet(full.weights);
      const fromFile = new ParameterSet(deferred.weights);
      assert.equal(fromFile.digest(), reference.digest(), path);
      // w0 read back after local passes and a coefficient change: the same replica as a held copy.
      for (const set of [reference, fromFile]) {
        set.perturb(1234, 0.25);
        set.applyCoefficientDelta(5, [1, 2], [90_000, -4], 1e-2);
        set.perturb(99, 0.1);
        set.resetToBase();
      }
      assert.equal(fromFile.digest(), reference.digest(), `${path}: after passes and a change`);
      assert.equal(fromFile.memoryUsage().base, 0);
    }

    // Changed in place after loading: refused, by path.
    const deferred = await loadModel(inline, { defer: true });
    const set = new ParameterSet(deferred.weights);
    set.perturb(7, 0.5);
    const later = new Date(Date.now() + 5000);
    utimesSync(inline, later, later);
    assert.throws(
      () => set.resetToBase(),
      (e: Error) => e instanceof ModelError && /changed since the model was loaded/.test(e.message),
    );
    assert.throws(() => set.resetToBase(), /changed since/, 'still not the replica: the next reset tries again');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an engine holding S as coefficients, w0 in the file, gives a client the held engine's replicas round after round", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedkseed-compact-'));
  try {
    const path = join(dir, 'model.onnx');
    writeGpt2(TINY, path);
    const config: FederationConfig = {
      k: 64,
      federationSeed: 11,
      epsilon: 1e-3,
      eta: 2e-4,
      tau: 3,
      batchSize: 2,
      sampling: 'uniform',
      weighting: 'examples',
      rounds: 3,
      clientsPerRound: 1,
      deadlineMs: 1000,
    };
    const train = Array.from({ length: 8 }, (_, n) => ({
      id: `e${n}`,
      group: 'g',
      splitKey: `e${n}`,
      ids: Int32Array.from({ length: 16 }, (_, t) => (n * 31 + t * 7) % 97),
    }));
    const digests: string[][] = [];
    for (const memory of [
      { sums: 'held', base: 'held' },
      { sums: 'coefficients', spillDir: dir },
    ] as const) {
      const engine = await openEngine({ model: path, threads: 1, memory });
      try {
        const trainer = new EngineLocalTrainer(engine, { train, heldOut: train.slice(0, 2) }, { batchSize: 2, seqLen: 16, clientSeed: 1 });
        const seen: string[] = [];
        for (let round = 1; round <= 3; round++) {
          const indices = Uint32Array.from({ length: 5 }, (_, i) => (round * 13 + i * 7) % 64);
          const values = Float64Array.from(indices, (j) => ((j * 7919) % 200_001) - 100_000);
          await trainer.applyCoefficientDelta({ indices, values }, config);
          seen.push(await trainer.digest());
          const result = await trainer.trainRound({ round, steps: 3, probabilities: null, config });
          seen.push(result.pairs.map((p) => p.g).join(','));
          seen.push(await trainer.digest());
        }
        digests.push(seen);
      } finally {
        await engine.close();
      }
    }
    assert.deepEqual(digests[1], digests[0]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
