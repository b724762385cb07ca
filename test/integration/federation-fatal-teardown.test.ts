// After a fatal protocol error the server reads nothing more from the peer: frames that follow are
// neither decoded nor logged, and what one connection can make the server log is rate-limited.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import WebSocket from 'ws';
import { PROTOCOL_VERSION, type FederationConfig } from '../../protocol';
import { startServer } from '../../federation/server';

const config: FederationConfig = {
  k: 64,
  federationSeed: 3,
  epsilon: 1e-3,
  eta: 0.05,
  tau: 4,
  batchSize: 1,
  sampling: 'uniform',
  weighting: 'examples',
  rounds: 5,
  clientsPerRound: 2,
  deadlineMs: 5000,
};

test('frames after a fatal error are not decoded or logged; the log of one connection stays small', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-fatal-'));
  let logged = 0;
  let lines = 0;
  const log = new Writable({
    write(chunk: Buffer, _enc, done) {
      logged += chunk.length;
      lines += chunk.toString().split('\n').length - 1;
      done();
    },
  });
  // A generous rate limit, so the fatal error below is the version's, not the flood's.
  const server = await startServer({
    config,
    modelHash: new Uint8Array(32),
    generatorVersion: 1,
    paramCount: 8,
    storePath: join(dir, 'store'),
    log,
    limits: { messagesPerSecond: 1e6, messageBurst: 1e6 },
  });
  try {
    const before = logged;
    const ws = new WebSocket(server.url);
    await new Promise((r) => ws.once('open', r));
    const bad = Uint8Array.from([PROTOCOL_VERSION + 1, 1]);
    const closed = new Promise((r) => ws.once('close', r));
    // Everything is written before the server answers: 20,000 frames, the first already fatal.
    for (let i = 0; i < 20_000; i++) ws.send(bad);
    await closed;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(logged - before < 4096, `the log grew by ${logged - before} bytes (${lines} lines)`);
    assert.equal(server.stats().connections, 0);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
