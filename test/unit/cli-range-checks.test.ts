// Options are checked when they are parsed: K within what clients handle, a deadline Node's timers can
// hold, a dataset that is a regular file or folder within the size limit.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkSeqLen, dataPath, deadlineSeconds, MAX_SEEDS, seedCount, writableFile } from '../../cli/options';

test('K: 1 to 65,536', () => {
  assert.equal(MAX_SEEDS, 65_536);
  assert.equal(seedCount('65536'), 65_536);
  assert.throws(() => seedCount('70000'), /at most 65,536/);
  assert.throws(() => seedCount('0'), /positive integer/);
});

test("deadline: positive seconds Node's timers can hold", () => {
  assert.equal(deadlineSeconds('60'), 60);
  assert.throws(() => deadlineSeconds('3000000'), /at most 2147483 s/);
  assert.throws(() => deadlineSeconds('0'), /positive/);
  assert.throws(() => deadlineSeconds('0.0001'), /at least 1 ms/);
});

test('data: a regular file or folder within the size limit, or refused with the reason', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-data-'));
  try {
    const file = join(dir, 'a.jsonl');
    writeFileSync(file, '{"text":"x"}\n');
    assert.equal(dataPath(file), file);
    assert.equal(dataPath(dir), dir);
    assert.throws(() => dataPath('/dev/zero'), /--data \/dev\/zero: not a regular file or folder/);
    assert.throws(() => dataPath(join(dir, 'missing')), /no such file or folder/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--out: its folder must exist and be writable before any work starts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-out-'));
  try {
    const out = writableFile('--out');
    assert.equal(out(join(dir, 'c.json')), join(dir, 'c.json'));
    assert.throws(() => out(join(dir, 'missing', 'c.json')), /--out .*: the folder .*missing does not exist/);
    assert.throws(() => out(dir), /is a folder/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--seq-len: no longer than the model's positions, when the model says", () => {
  checkSeqLen(512, 1024);
  checkSeqLen(100_000, undefined);
  assert.throws(() => checkSeqLen(100_000, 1024), /--seq-len 100000 exceeds the model's 1024 positions/);
});
