import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EXACT_LIMIT, ZQ_MAX_ABS } from '../../protocol';
import { seedKey, z } from '../../trainer/zo/generator';
import { ParameterSet, type ParameterSetOptions } from '../../trainer/zo/parameters';
import { oddShapedModel } from '../helpers/float-fixtures';

const CONFIGS: ParameterSetOptions[] = [{ kernel: 'js' }, { kernel: 'wasm-simd' }, { kernel: 'wasm-simd', resident: false }];

test('tensors are ordered by name with aligned, disjoint offsets', () => {
  const set = new ParameterSet(oddShapedModel());
  const names = set.tensors.map((t) => t.name);
  assert.deepEqual(names, [...names].sort());
  assert.equal(names[0], 'Z_last', 'code-unit order puts upper case first');
  let end = 0;
  for (const t of set.tensors) {
    assert.equal(t.offset % 8, 0);
    assert.ok(t.offset >= end);
    assert.ok(t.offset - end < 8);
    end = t.offset + t.size;
    assert.equal(set.weights.get(t.name), t.data);
    assert.deepEqual(set.dims.get(t.name), t.dims);
  }
  assert.equal(
    set.parameterCount,
    oddShapedModel().reduce((a, t) => a + t.data.length, 0),
  );
  assert.equal(set.indexSpan, Math.ceil(end / 8) * 8);
});

test('bad inputs are refused with the tensor named', () => {
  assert.throws(() => new ParameterSet([]), /at least one/);
  assert.throws(() => new ParameterSet([{ name: 'a', dims: [2, 3], data: new Float32Array(5) }]), /"a"/);
  const a = { name: 'a', dims: [1], data: new Float32Array(1) };
  assert.throws(() => new ParameterSet([a, a]), /duplicate tensor name "a"/);
});

test('WASM-resident weights are non-shared WebAssembly memory; the JS set is plain memory', () => {
  const wasm = new ParameterSet(oddShapedModel(), { kernel: 'wasm-simd' });
  assert.equal(wasm.kernel, 'wasm-simd');
  assert.equal(wasm.resident, true);
  const buffer = wasm.tensors[0].data.buffer;
  assert.ok(!(buffer instanceof SharedArrayBuffer));
  for (const t of wasm.tensors) assert.equal(t.data.buffer, buffer);
  const js = new ParameterSet(oddShapedModel(), { kernel: 'js' });
  assert.equal(js.kernel, 'js');
  assert.equal(js.resident, false);
  assert.equal(js.digest(), wasm.digest());
});

test("perturb follows z(F, j, i) at each tensor's global indices", () => {
  for (const options of CONFIGS) {
    const set = new ParameterSet(oddShapedModel(), options);
    const before = set.tensors.map((t) => t.data.slice());
    set.perturb(seedKey(9, 4), 1e-2);
    set.tensors.forEach((t, k) => {
      for (let e = 0; e < t.size; e++) {
        const expected = Math.fround(before[k][e] + Math.fround(Math.fround(1e-2 / 4096) * z(9, 4, t.offset + e) * 4096));
        assert.equal(t.data[e], expected, `${options.kernel} ${t.name}[${e}]`);
      }
    });
  }
});

/** A sequence of ZO-like steps followed by applying coefficients; returns the digest after each phase. */
function run(options: ParameterSetOptions): string[] {
  const set = new ParameterSet(oddShapedModel(), options);
  const digests = [set.digest()];
  const k1 = seedKey(1, 10);
  const k2 = seedKey(1, 11);
  set.perturb(k1, 5e-4);
  set.perturb(k1, -1e-3);
  set.perturb2(k1, 5e-4 - 0.3, k2, 5e-4);
  digests.push(set.digest());
  set.applyCoefficientDelta(1, [10, 11, 4095], [123_456, -98_765, 1], 0.5);
  digests.push(set.digest());
  return digests;
}

test('whole-model operations give identical digests in every kernel and placement', () => {
  const [a, b, c] = CONFIGS.map(run);
  assert.deepEqual(b, a);
  assert.deepEqual(c, a);
  assert.notEqual(a[1], a[0]);
  assert.notEqual(a[2], a[1]);
});

test('coefficients applied at once, round by round, or from scratch give the same replica', () => {
  const eta = 1e-3;
  const rounds: [number[], number[]][] = [
    [
      [0, 5, 17],
      [70_000, -3, 12_345_678],
    ],
    [
      [5, 9],
      [3, -4_000_000],
    ],
    [
      [0, 1, 2, 3],
      [1, 2, 3, -70_000],
    ],
  ];
  const total = new Map<number, number>();
  for (const [seeds, deltas] of rounds) seeds.forEach((j, n) => total.set(j, (total.get(j) ?? 0) + deltas[n]));
  const digests: string[] = [];
  for (const options of CONFIGS) {
    const once = new ParameterSet(oddShapedModel(), options);
    once.applyCoefficientDelta(77, [...total.keys()], [...total.values()], eta);
    const stepwise = new ParameterSet(oddShapedModel(), options);
    stepwise.perturb(seedKey(77, 3), 0.1); // local steps in between are discarded by applying
    for (const [seeds, deltas] of rounds) stepwise.applyCoefficientDelta(77, seeds, deltas, eta);
    const reversed = new ParameterSet(oddShapedModel(), options);
    for (const [seeds, deltas] of [...rounds].reverse()) {
      reversed.applyCoefficientDelta(77, [...seeds].reverse(), [...deltas].reverse(), eta);
    }
    digests.push(once.digest(), stepwise.digest(), reversed.digest());
    const nonZero = [...total].filter(([, c]) => c !== 0);
    assert.deepEqual(
      [...stepwise.appliedCoefficients()].sort((x, y) => x[0] - y[0]),
      nonZero.sort((x, y) => x[0] - y[0]),
    );
  }
  assert.equal(new Set(digests).size, 1, digests.join('\n'));
});

test('the exact rebuild agrees with the float path within float32 rounding', () => {
  const eta = 2e-3;
  const seeds = [3, 8, 8, 20, 41];
  const deltas = [65_536, -131_072, 32_768, 1_000_000, -7];
  for (const options of CONFIGS) {
    const exact = new ParameterSet(oddShapedModel(), options);
    exact.applyCoefficientDelta(5, seeds, deltas, eta);
    const float = new ParameterSet(oddShapedModel(), options);
    seeds.forEach((j, n) => float.perturb(seedKey(5, j), (-eta * deltas[n]) / 65_536));
    exact.tensors.forEach((t, k) => {
      const f = float.tensors[k].data;
      for (let e = 0; e < t.size; e++) {
        // Each float pass rounds twice (product and sum); bound by the passes' magnitudes.
        let magnitude = Math.abs(t.data[e]);
        seeds.forEach((j, n) => (magnitude += Math.abs((eta * deltas[n]) / 65_536) * Math.abs(z(5, j, t.offset + e))));
        const tolerance = 2 * seeds.length * magnitude * 2 ** -24;
        assert.ok(Math.abs(t.data[e] - f[e]) <= tolerance, `${t.name}[${e}]: ${t.data[e]} vs ${f[e]}`);
      }
    });
  }
});

test('resetToBase returns to the replica and snapshot/restore round-trips', () => {
  for (const options of CONFIGS) {
    const set = new ParameterSet(oddShapedModel(), options);
    const initial = set.digest();
    set.perturb(seedKey(2, 2), 0.5);
    set.resetToBase();
    assert.equal(set.digest(), initial, 'base before any coefficient');
    set.applyCoefficientDelta(2, [1, 2], [1000, -2000], 0.1);
    const replica = set.digest();
    const saved = set.snapshot();
    set.perturb2(seedKey(2, 1), 0.3, seedKey(2, 9), -0.2);
    assert.notEqual(set.digest(), replica);
    set.resetToBase();
    assert.equal(set.digest(), replica);
    set.perturb(seedKey(2, 4), 1);
    set.restore(saved);
    assert.equal(set.digest(), replica);
    assert.throws(() => set.restore(new Float32Array(3)), /snapshot/);
  }
});

test("rebuildFromBase drops a drifted accumulator and a flipped weight: w0 plus the full C gives the federation's replica", () => {
  const spill = mkdtempSync(join(tmpdir(), 'fedk-rebuild-'));
  try {
    for (const options of [
      ...CONFIGS,
      { sums: 'coefficients', spillDir: spill } satisfies ParameterSetOptions,
      { sums: 'file', spillDir: spill } satisfies ParameterSetOptions,
    ]) {
      const fresh = new ParameterSet(oddShapedModel(), options);
      const w0 = fresh.digest();
      fresh.applyCoefficientDelta(9, [1, 4, 30], [5000, -70_000, 3], 0.01);
      const drifted = new ParameterSet(oddShapedModel(), options);
      drifted.applyCoefficientDelta(9, [1, 4], [5000, -70_000], 0.01);
      drifted.applyCoefficientDelta(9, [7], [123_456], 0.01); // a change no one else applied
      const t = drifted.tensors[1];
      t.data[0] = -t.data[0] || 1; // and a flipped weight
      assert.notEqual(drifted.digest(), fresh.digest());
      drifted.rebuildFromBase();
      assert.equal(drifted.digest(), w0, 'the base model again');
      assert.equal(drifted.appliedCoefficients().size, 0);
      drifted.applyCoefficientDelta(9, [1, 4, 30], [5000, -70_000, 3], 0.01);
      assert.equal(drifted.digest(), fresh.digest(), `${JSON.stringify(options)}: bit-identical after the rebuild`);
      fresh.dispose();
      drifted.dispose();
    }
  } finally {
    rmSync(spill, { recursive: true, force: true });
  }
});

test('the exactness guard refuses an update beyond 2^53 and leaves the replica unchanged', () => {
  const set = new ParameterSet(oddShapedModel());
  const limit = Math.ceil(EXACT_LIMIT / ZQ_MAX_ABS) - 1;
  set.applyCoefficientDelta(3, [0], [limit - 10], 1e-9);
  const before = set.digest();
  assert.throws(() => set.applyCoefficientDelta(3, [1], [-11], 1e-9), /exactness bound.*2\^53/);
  assert.equal(set.digest(), before);
  assert.doesNotThrow(() => set.applyCoefficientDelta(3, [1], [-10], 1e-9));
  assert.throws(() => set.applyCoefficientDelta(4, [1], [1], 1e-9), /federation seed 4 differs/);
  assert.throws(() => set.applyCoefficientDelta(3, [1], [0.5], 1e-9), /exact integer/);
});
