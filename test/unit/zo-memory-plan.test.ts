// The memory budget: what must fit (weights, held w0 copies, onnxruntime), then the z store, then S
// (in memory, else in a scratch file where the disk has room, else as coefficients); a budget below the
// minimum fails with the figure needed; sizes parse with units.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  estimateRuntimeBytes,
  MemoryBudgetError,
  parseMemorySize,
  planMemory,
  runtimeShape,
  sumsFileNeeds,
  type MemoryPlanInput,
} from '../../trainer/zo/memory-plan';
import { freeBytesAt } from '../../trainer/zo/replica-file';

const GiB = 2 ** 30;
const d = 1_000_000_000;
const base: MemoryPlanInput = { indexSpan: d, heldBase: 0, runtimeBytes: GiB, budgetBytes: null, totalMemory: 64 * GiB, storeWanted: true };

test('a large budget holds everything: the full z store and S', () => {
  const plan = planMemory({ ...base, budgetBytes: 20 * GiB });
  assert.equal(plan.zStore, 1);
  assert.equal(plan.sums, 'held');
  assert.equal(plan.totalBytes, 4 * d + 2 * d + 8 * d + GiB);
  assert.equal(plan.explicitBudget, true);
});

test('the z store comes before S, and a budget short of the store keeps part of it', () => {
  const margin = (bytes: number): number => bytes / 0.95; // the plan leaves 5% of the budget unplanned
  const store = planMemory({ ...base, budgetBytes: margin(4 * d + GiB + 2 * d + 7 * d) });
  assert.equal(store.zStore, 1);
  assert.equal(store.sums, 'coefficients', 'S needs 8 bytes a parameter, 7 are left');
  const part = planMemory({ ...base, budgetBytes: margin(4 * d + GiB + d) });
  assert.equal(part.sums, 'coefficients');
  assert.ok(Math.abs(part.zStore - 0.5) < 1e-9, `half the store (${part.zStore})`);
  assert.ok(part.totalBytes <= part.budgetBytes);
  const none = planMemory({ ...base, storeWanted: false, budgetBytes: margin(4 * d + GiB + 8 * d) });
  const tight = planMemory({ ...base, budgetBytes: 4 * d + GiB + GiB / 100 });
  assert.equal(tight.zStore, 0, 'inside the margin nothing optional is planned');
  assert.equal(none.zStore, 0);
  assert.equal(none.sums, 'held');
});

test('S the budget cannot hold goes to a scratch file when its filesystem has room for it and a margin, else to coefficients', () => {
  const tight = { ...base, budgetBytes: (4 * d + GiB + 2 * d + 7 * d) / 0.95 };
  assert.equal(sumsFileNeeds(2 * d), 16 * d + 1.6 * d, 'a tenth of the file left free');
  assert.equal(sumsFileNeeds(1e6), 8e6 + GiB, 'at least 1 GiB left free');
  assert.equal(planMemory({ ...tight, scratchFreeBytes: sumsFileNeeds(d) }).sums, 'file');
  assert.equal(planMemory({ ...tight, scratchFreeBytes: sumsFileNeeds(d) - 1 }).sums, 'coefficients', 'no room for the margin');
  assert.equal(planMemory({ ...tight, scratchFreeBytes: null }).sums, 'coefficients', 'free space unknown');
  const file = planMemory({ ...tight, scratchFreeBytes: 100 * GiB });
  assert.equal(file.bytes.sums, 0, 'the file is on disk, not in the budget');
  assert.equal(file.zStore, 1, 'the z store is planned as before');
  assert.equal(planMemory({ ...base, budgetBytes: 20 * GiB, scratchFreeBytes: 100 * GiB }).sums, 'held', 'held when the budget has room');
});

test('the free space of a scratch folder, made or not yet made, is read from its filesystem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedkseed-free-'));
  try {
    const here = freeBytesAt(dir);
    const below = freeBytesAt(join(dir, 'not', 'made', 'yet'));
    if (process.platform !== 'win32' || here !== null) {
      assert.ok(here !== null && here > 0, `free bytes ${here}`);
      assert.ok(below !== null && Math.abs(below - here) < 64 * 2 ** 20, 'the nearest existing folder answers');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a budget below the minimum fails early with the figure needed and what makes it up', () => {
  assert.throws(
    () => planMemory({ ...base, heldBase: d / 2, budgetBytes: 4 * GiB }),
    (e: unknown) =>
      e instanceof MemoryBudgetError &&
      e.neededBytes === 4 * d + 2 * d + GiB &&
      /needs at least 6\.59 GiB to train/.test(e.message) &&
      /working weights 3\.73 GiB/.test(e.message) &&
      /copies of w0 that cannot be read back from the model file 1\.86 GiB/.test(e.message) &&
      /--max-memory/.test(e.message),
  );
  assert.throws(() => planMemory({ ...base, totalMemory: 4 * GiB }), /automatic budget \(80% of this machine's 4\.00 GiB\) is 3\.20 GiB/);
});

test('without a budget the plan takes 80% of physical memory', () => {
  const plan = planMemory({ ...base, totalMemory: 10 * GiB });
  assert.equal(plan.budgetBytes, Math.floor(8 * GiB));
  assert.equal(plan.explicitBudget, false);
});

test('memory sizes: bytes, or K/M/G/T in powers of 1024, with or without B/iB', () => {
  assert.equal(parseMemorySize('1000'), 1000);
  assert.equal(parseMemorySize('12G'), 12 * GiB);
  assert.equal(parseMemorySize('12gb'), 12 * GiB);
  assert.equal(parseMemorySize('7.5GiB'), 7.5 * GiB);
  assert.equal(parseMemorySize('800M'), 800 * 2 ** 20);
  assert.equal(parseMemorySize('1T'), 2 ** 40);
  for (const bad of ['', 'lots', '-1G', '0', '12 X']) assert.throws(() => parseMemorySize(bad), RangeError, bad);
});

test('the runtime estimate grows with the batch and the vocabulary', () => {
  const shape = runtimeShape([{ dims: [50257, 768] }, { dims: [768, 3072] }, { dims: [1024, 768] }], 50257);
  assert.deepEqual(shape, { vocab: 50257, hidden: 3072 });
  const one = estimateRuntimeBytes(shape, { batch: 1, seq: 128 });
  const eight = estimateRuntimeBytes(shape, { batch: 8, seq: 128 });
  assert.ok(eight > one + 600 * 2 ** 20, 'eight rows of logits over 50,257 tokens');
});
