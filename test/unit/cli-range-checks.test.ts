// Options are checked when they are parsed: K within what clients handle, a deadline Node's timers can
// hold, a dataset that is a regular file or folder within the size limit.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkSeqLen, dataPath, deadlineSeconds, MAX_SEEDS, positiveIntUpTo, seedCount, storeArgument, writableFile } from '../../cli/options';
import { type FederationConfig } from '../../protocol';
import { decodeMessage, encodeMessage } from '../../protocol/node/codec';
import { clientIdProblem, printable } from '../../protocol/client-id';
import { MAX_ROUNDS, MAX_TAU } from '../../protocol/config-limits';

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
  assert.throws(() => deadlineSeconds('0.0001'), /at least 1 s/);
  assert.throws(() => deadlineSeconds('0.001'), /at least 1 s/);
  assert.throws(() => deadlineSeconds('0.5'), /at least 1 s/);
  assert.equal(deadlineSeconds('1'), 1);
});

const welcome = (over: Partial<FederationConfig>): FederationConfig => {
  const config: FederationConfig = {
    k: 16,
    federationSeed: 1,
    epsilon: 1e-3,
    eta: 1e-3,
    tau: 1,
    batchSize: 1,
    sampling: 'uniform',
    weighting: 'examples',
    rounds: 1,
    clientsPerRound: 1,
    deadlineMs: 1000,
    ...over,
  };
  const m = decodeMessage(encodeMessage({ type: 'welcome', config, committedRound: 0 }));
  assert.equal(m.type, 'welcome');
  return m.config;
};

test("rounds and τ: up to what a client's WELCOME accepts, from the protocol's constants", () => {
  const rounds = positiveIntUpTo(MAX_ROUNDS, 'round numbers travel as 32-bit integers');
  const tau = positiveIntUpTo(MAX_TAU, 'the most pairs an upload carries');
  // The bounds are the codec's: a client reads the largest as sent and refuses (or misreads) one more.
  assert.equal(welcome({ rounds: rounds(String(MAX_ROUNDS)) }).rounds, MAX_ROUNDS);
  assert.equal(welcome({ rounds: MAX_ROUNDS + 2 }).rounds, 1, '4294967297 reaches a client as 1');
  assert.throws(() => rounds('4294967297'), /at most 4,294,967,295 \(round numbers travel as 32-bit integers\); got 4294967297/);
  assert.equal(welcome({ tau: tau(String(MAX_TAU)) }).tau, MAX_TAU);
  assert.throws(() => welcome({ tau: MAX_TAU + 1 }), /tau/);
  assert.throws(() => tau('2000000'), /at most 1,048,576/);
  assert.throws(() => tau('0'), /positive integer/);
});

test('--store: a folder or a postgres:// URL with a host and database; a malformed URL is refused', () => {
  assert.equal(storeArgument('fedkseed-store'), 'fedkseed-store');
  assert.equal(storeArgument('./odd:name'), './odd:name');
  assert.equal(storeArgument('C:\\fed\\store'), 'C:\\fed\\store');
  assert.equal(storeArgument('postgres://fed@db.example:5432/fed'), 'postgres://fed@db.example:5432/fed');
  assert.throws(() => storeArgument('postgres:/db'), /--store postgres:\/db: not a postgres:\/\/ URL nor a folder/);
  assert.throws(() => storeArgument('postgresql:db'), /not a postgres:\/\/ URL/);
  assert.throws(() => storeArgument('mysql://h/db'), /not a postgres:\/\/ URL/);
  assert.throws(() => storeArgument('postgres://host'), /names no host or no database/);
  assert.throws(() => storeArgument('postgres:///db'), /names no host or no database/);
});

test('client ids: one rule (HELLO, tokens), and printed without control characters', () => {
  assert.equal(clientIdProblem('alice'), null);
  assert.equal(clientIdProblem('é'.repeat(32)), null, '64 bytes of UTF-8');
  assert.match(clientIdProblem('é'.repeat(33)) ?? '', /66 bytes of UTF-8, at most 64/);
  assert.match(clientIdProblem('') ?? '', /empty/);
  for (const bad of ['red\x1b[31m', 'a\rb', 'a\nb', 'bidi\u202eevil', 'del\x7f', 'c1\u009b31m'])
    assert.match(clientIdProblem(bad) ?? '', /control or format/, JSON.stringify(bad));
  assert.equal(printable('x\x1b[2Jy\u202e'), 'x\\u{1b}[2Jy\\u{202e}');
  assert.equal(printable('plain id'), 'plain id');
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
