// A checkpoint names ε `epsilon`, as every other place does; one written when it was `eps` still loads.
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCheckpoint, makeCheckpoint, saveCheckpoint } from '../../trainer/zo/checkpoint';

const origin = { baseModel: 'a'.repeat(64), federationSeed: 7, k: 16, eta: 1e-4, epsilon: 1e-3 };

test('a checkpoint keeps ε as epsilon and reads back what was written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-ckpt-'));
  try {
    const path = join(dir, 'c.json');
    const written = makeCheckpoint(origin, Float64Array.of(0, 3, 0, -5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), { steps: 12 });
    saveCheckpoint(path, written);
    assert.equal((JSON.parse(readFileSync(path, 'utf8')) as { epsilon?: number }).epsilon, 1e-3);
    assert.deepEqual(loadCheckpoint(path), written);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a checkpoint that calls ε 'eps' loads with its value as epsilon", () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-ckpt-'));
  try {
    const path = join(dir, 'old.json');
    const { epsilon, ...rest } = makeCheckpoint(origin, new Map([[2, 9]]));
    writeFileSync(path, JSON.stringify({ ...rest, eps: epsilon }));
    const loaded = loadCheckpoint(path);
    assert.equal(loaded.epsilon, 1e-3);
    assert.ok(!('eps' in loaded));
    assert.deepEqual(loaded.coefficients, { 2: 9 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
