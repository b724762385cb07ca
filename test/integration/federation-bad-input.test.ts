// Every kind of bad frame gets an ERROR frame with its code (and a close where the peer is broken),
// while an honest client's federation completes and the committed state only holds honest uploads.
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { ErrorCode, PROTOCOL_VERSION, type FederationConfig, type Message } from '../../protocol';
import { decodeMessage, encodeMessage } from '../../protocol/node/codec';
import { startServer } from '../../federation/server';
import { createToken, listTokens, revokeToken } from '../../federation/tokens';
import { FederationClient } from '../../federation/client/federation-client';
import { QuadraticToyTrainer } from '../../bench/toy-trainer';

const config: FederationConfig = {
  k: 200,
  federationSeed: 5,
  epsilon: 1e-3,
  eta: 0.05,
  tau: 10,
  batchSize: 1,
  sampling: 'pro',
  weighting: 'examples',
  rounds: 12,
  clientsPerRound: 1,
  deadlineMs: 2000,
};

interface Outcome {
  readonly codes: number[];
  readonly closed: boolean;
}

/** Opens a raw connection, sends the frames, collects ERROR codes until the server closes or 1 s passes. */
function probe(url: string, frames: (Uint8Array | string)[]): Promise<Outcome> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    const codes: number[] = [];
    let closed = false;
    const done = (): void => resolve({ codes, closed });
    const timer = setTimeout(() => {
      ws.terminate();
      done();
    }, 1000);
    ws.on('open', () => frames.forEach((f) => ws.send(f)));
    ws.on('message', (data: Buffer) => {
      const m: Message = decodeMessage(data);
      if (m.type === 'error') codes.push(m.code);
    });
    ws.on('close', () => {
      closed = true;
      clearTimeout(timer);
      done();
    });
  });
}

test('bad frames are rejected with their codes while an honest round completes', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-bad-'));
  const trainer = new QuadraticToyTrainer({ dimension: 8, clientSeed: 1 });
  const server = await startServer({
    config,
    modelHash: trainer.modelHash,
    generatorVersion: 1,
    paramCount: 8,
    storePath: join(dir, 'store'),
    minClients: 1,
    limits: { maxMessageBytes: 4096 },
  });
  try {
    const { token } = await createToken(server.store, 'honest');
    const revoked = await createToken(server.store, 'revoked');
    assert.equal(await revokeToken(server.store, revoked.id), true);
    // A revoked token stays listed, marked, so that its client id stays reserved.
    assert.deepEqual((await listTokens(server.store)).map((t) => [t.label, t.revokedAt !== undefined]).sort(), [
      ['honest', false],
      ['revoked', true],
    ]);

    // A token speaks for one identity: each rogue id gets its own.
    const rogueTokens = new Map<string, string>();
    for (const id of ['rogue', 'r1', 'r2', 'r3', 'r4']) rogueTokens.set(id, (await createToken(server.store, id, id)).token);
    const hello = (over: Partial<{ token: string; modelHash: Uint8Array; clientId: string }> = {}): Uint8Array =>
      encodeMessage({
        type: 'hello',
        clientId: over.clientId ?? 'rogue',
        token: over.token ?? (rogueTokens.get(over.clientId ?? 'rogue') as string),
        modelHash: over.modelHash ?? trainer.modelHash,
        lastSyncedRound: 0,
        generatorVersion: 1,
      });
    const upload = (seed: number, g: number, round = 99): Uint8Array =>
      encodeMessage({
        type: 'upload',
        round,
        examples: 1,
        lossBeforeSum: 1,
        lossBeforeCount: 1,
        lossAfterSum: 1,
        lossAfterCount: 1,
        digestRound: 0,
        digest: new Uint8Array(32),
        pairs: [{ seed, g }],
      });
    // The honest client trains slowly enough that its federation is still running during every probe.
    const slow = Object.assign(Object.create(trainer) as QuadraticToyTrainer, {
      trainRound: async (...a: Parameters<QuadraticToyTrainer['trainRound']>) => {
        await new Promise((r) => setTimeout(r, 100));
        return trainer.trainRound(...a);
      },
    });
    const good = new FederationClient({ url: server.url, clientId: 'honest', token, trainer: slow });
    let finished = false;
    const run = good.run().finally(() => (finished = true));

    const h = hello();
    const cases: [string, (Uint8Array | string)[], number, boolean][] = [
      ['truncated hello', [h.subarray(0, h.length - 3)], ErrorCode.Truncated, true],
      ['trailing garbage', [Buffer.concat([h, Buffer.from([1, 2])])], ErrorCode.Malformed, true],
      ['text frame', ['hello'], ErrorCode.Malformed, true],
      ['oversized frame', [new Uint8Array(5000)], ErrorCode.TooLarge, true],
      ['unknown version', [Uint8Array.from([PROTOCOL_VERSION + 1, 1])], ErrorCode.UnsupportedVersion, true],
      ['unknown type', [Uint8Array.from([PROTOCOL_VERSION, 200])], ErrorCode.UnknownType, true],
      ['bad token', [hello({ token: 'fks_0123456789abcdef_' + 'x'.repeat(43) })], ErrorCode.AuthFailed, true],
      ['revoked token', [hello({ token: revoked.token })], ErrorCode.AuthFailed, true],
      ["another token's identity", [hello({ clientId: 'honest', token: rogueTokens.get('rogue') })], ErrorCode.IdentityMismatch, true],
      ['wrong model hash', [hello({ modelHash: new Uint8Array(32).fill(7) })], ErrorCode.ModelMismatch, true],
      ['upload before hello', [upload(1, 0.5)], ErrorCode.UnexpectedMessage, true],
      ['seed index ≥ K', [hello({ clientId: 'r1' }), upload(220, 0.5)], ErrorCode.SeedOutOfRange, true],
      ['NaN g', [hello({ clientId: 'r2' }), upload(3, NaN)], ErrorCode.NonFinite, true],
      ['infinite g', [hello({ clientId: 'r3' }), upload(3, Infinity)], ErrorCode.NonFinite, true],
      ['wrong round', [hello({ clientId: 'r4' }), upload(3, 0.5, 99)], ErrorCode.WrongRound, false],
    ];
    for (const [name, frames, code, closes] of cases) {
      const outcome = await probe(server.url, frames);
      assert.ok(outcome.codes.includes(code), `${name}: got codes ${outcome.codes.join(',')}, want ${code}`);
      if (closes) assert.ok(outcome.closed, `${name}: connection left open`);
    }

    assert.equal(finished, false, 'the honest federation ended before the probes');
    const result = await run;
    assert.equal(result.finalRound, 12);
    const state = await server.store.loadState();
    assert.equal(state?.round, 12);
    for (let r = 1; r <= 12; r++) {
      const record = await server.store.loadRound(r);
      assert.ok(record && record.participants.every((p) => p === 'honest'), `round ${r}: ${record?.participants.join(',')}`);
    }
    // Nothing a rogue sent reached the coefficients: only the honest client's seeds are non-zero.
    assert.ok(state && state.coefficients.every((c) => Number.isSafeInteger(c)));
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('limits: a full server, a silent peer and a flooding peer are each refused with their code', { timeout: 15_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-limits-'));
  const trainer = new QuadraticToyTrainer({ dimension: 8, clientSeed: 1 });
  const server = await startServer({
    config,
    modelHash: trainer.modelHash,
    generatorVersion: 1,
    paramCount: 8,
    storePath: join(dir, 'store'),
    requireToken: false,
    limits: { maxConnections: 1, helloTimeoutMs: 150, messagesPerSecond: 5, messageBurst: 5 },
  });
  try {
    // A silent peer holds no slot against a newer one: the oldest silent connection makes room, and the
    // newer one is closed at its hello timeout.
    const older = probe(server.url, []);
    await new Promise((r) => setTimeout(r, 50));
    const silent = await probe(server.url, []);
    assert.deepEqual(await older, { codes: [ErrorCode.ServerFull], closed: true });
    assert.deepEqual(silent, { codes: [ErrorCode.HelloTimeout], closed: true });
    // A slot held by an authenticated session is never taken: the new connection is refused.
    for (let i = 0; i < 100 && server.stats().connections > 0; i++) await new Promise((r) => setTimeout(r, 10));
    const holderHello = encodeMessage({ type: 'hello', clientId: 'holder', token: 'x', modelHash: trainer.modelHash, lastSyncedRound: 0, generatorVersion: 1 });
    const holder = probe(server.url, [holderHello]);
    await new Promise((r) => setTimeout(r, 150));
    const full = await probe(server.url, []);
    assert.deepEqual(full, { codes: [ErrorCode.ServerFull], closed: true });
    assert.deepEqual(await holder, { codes: [], closed: false }, 'the authenticated session stays');

    // A valid hello, then 20 uploads for a wrong round (each answered, none fatal) against a burst of
    // 5 messages: the server stops reading and says why. Refused connections freed their slots.
    for (let i = 0; i < 100 && server.stats().connections > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(server.stats().connections, 0);
    const hello = encodeMessage({ type: 'hello', clientId: 'flood', token: 'x', modelHash: trainer.modelHash, lastSyncedRound: 0, generatorVersion: 1 });
    const wrongRound = encodeMessage({
      type: 'upload',
      round: 99,
      examples: 1,
      lossBeforeSum: 1,
      lossBeforeCount: 1,
      lossAfterSum: 1,
      lossAfterCount: 1,
      digestRound: 0,
      digest: new Uint8Array(32),
      pairs: [{ seed: 1, g: 0.5 }],
    });
    const flood = await probe(server.url, [hello, ...Array.from({ length: 20 }, () => wrongRound)]);
    assert.ok(flood.closed);
    assert.ok(flood.codes.includes(ErrorCode.RateLimited), `codes ${flood.codes.join(',')}`);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a port already in use is refused with a message that says so, and the store is released', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-port-'));
  const blocker = createNetServer().listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  const port = (blocker.address() as AddressInfo).port;
  const options = { config, modelHash: new Uint8Array(32), generatorVersion: 1, paramCount: 8, storePath: join(dir, 'store'), requireToken: false };
  try {
    await assert.rejects(startServer({ ...options, port }), new RegExp(`port 127\\.0\\.0\\.1:${port} is already in use`));
    // The store's lock was released: the same store opens again on a free port.
    const server = await startServer({ ...options, port: 0 });
    await server.close();
  } finally {
    blocker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a start that fails to listen stops every timer it started (heartbeat, revocation polling)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-port-timers-'));
  const blocker = createNetServer().listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  const port = (blocker.address() as AddressInfo).port;
  // Unref'd intervals are invisible to process.getActiveResourcesInfo(), so count them at the source.
  const live = new Set<ReturnType<typeof setInterval>>();
  const realSet = globalThis.setInterval;
  const realClear = globalThis.clearInterval;
  globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
    const t = realSet(...args);
    live.add(t);
    return t;
  }) as typeof setInterval;
  globalThis.clearInterval = ((t: ReturnType<typeof setInterval> | undefined) => {
    if (t) live.delete(t);
    realClear(t);
  }) as typeof clearInterval;
  try {
    await assert.rejects(
      startServer({ config, modelHash: new Uint8Array(32), generatorVersion: 1, paramCount: 8, storePath: join(dir, 'store'), requireToken: false, port }),
    );
    assert.equal(live.size, 0, `${live.size} interval(s) still running after the failed start`);
  } finally {
    globalThis.setInterval = realSet;
    globalThis.clearInterval = realClear;
    for (const t of live) realClear(t);
    blocker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a diverging round whose coefficients no replica could apply exactly is refused, never committed', { timeout: 15_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-diverge-'));
  const trainer = new QuadraticToyTrainer({ dimension: 8, clientSeed: 1 });
  // Finite but astronomically large projected gradients, as a diverging run produces.
  trainer.trainRound = async () => ({ pairs: [{ seed: 3, g: 1e30 }], examples: 1, lossBefore: { sum: 1, count: 1 }, lossAfter: { sum: 1, count: 1 } });
  const server = await startServer({
    config: { ...config, clientsPerRound: 1, deadlineMs: 2000 },
    modelHash: trainer.modelHash,
    generatorVersion: 1,
    paramCount: 8,
    storePath: join(dir, 'store'),
    requireToken: false,
  });
  const refusals: string[] = [];
  server.events.on('roundRestarted', (e) => refusals.push(e.reason));
  const halted = once(server.events, 'halted');
  const client = new FederationClient({ url: server.url, clientId: 'diverging', token: 'x', trainer });
  const run = client.run().catch(() => undefined);
  try {
    const [event] = (await halted) as [{ round: number; reason: string }];
    assert.equal(event.round, 1);
    assert.equal(refusals.length, 3);
    assert.ok(
      refusals.every((r) => /exact range/.test(r)),
      refusals.join(' | '),
    );
    assert.equal(server.stats().committedRound, 0);
    assert.equal(await server.store.loadRound(1), null);
  } finally {
    client.stop();
    await run;
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
