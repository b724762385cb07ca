// A flood of sockets that never say HELLO, from the token holder's own address, against a real server
// with small limits: the holder still connects and trains, and every silent socket is closed by its
// hello deadline (or sooner, to make room), raw TCP sockets that never upgrade included.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import type { FederationConfig } from '../../protocol';
import { startServer } from '../../federation/server';
import { createToken } from '../../federation/tokens';
import { FederationClient } from '../../federation/client/federation-client';
import { QuadraticToyTrainer } from '../../bench/toy-trainer';

const config: FederationConfig = {
  k: 64,
  federationSeed: 9,
  epsilon: 1e-3,
  eta: 0.05,
  tau: 4,
  batchSize: 1,
  sampling: 'uniform',
  weighting: 'examples',
  rounds: 2,
  clientsPerRound: 1,
  deadlineMs: 5000,
};

const HELLO_MS = 1500;
const SILENT_WS = 300;
const SILENT_TCP = 60;

interface Silent {
  /** When the connection (the WebSocket's upgrade) was made: after the server accepted it. */
  openedAt: number;
  closedAt: number | null;
}

test(
  '300 silent WebSockets and 60 silent TCP sockets from one address do not keep a token holder out; each is closed by its hello deadline',
  { timeout: 60_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedk-admission-'));
    const trainer = new QuadraticToyTrainer({ dimension: 8, clientSeed: 1 });
    const server = await startServer({
      config,
      modelHash: trainer.modelHash,
      generatorVersion: 1,
      paramCount: 8,
      storePath: join(dir, 'store'),
      minClients: 1,
      limits: { maxConnections: 40, maxPending: 30, maxPendingPerAddress: 20, helloTimeoutMs: HELLO_MS },
    });
    const sockets: { close(): void }[] = [];
    try {
      const { token } = await createToken(server.store, 'alice', 'alice');
      const silent: Silent[] = [];
      const opened: Promise<void>[] = [];
      for (let i = 0; i < SILENT_TCP; i++) {
        const s: Silent = { openedAt: Date.now(), closedAt: null };
        silent.push(s);
        const socket = connect(server.port, '127.0.0.1');
        socket.on('connect', () => (s.openedAt = Date.now()));
        socket.on('error', () => undefined);
        socket.on('close', () => (s.closedAt = Date.now()));
        sockets.push({ close: () => socket.destroy() });
      }
      for (let i = 0; i < SILENT_WS; i++) {
        const s: Silent = { openedAt: Date.now(), closedAt: null };
        silent.push(s);
        const ws = new WebSocket(server.url);
        ws.on('open', () => (s.openedAt = Date.now()));
        ws.on('error', () => undefined);
        opened.push(new Promise((resolve) => ws.on('close', () => resolve()).on('open', () => resolve())));
        ws.on('close', () => (s.closedAt = Date.now()));
        sockets.push({ close: () => ws.terminate() });
      }
      await Promise.all(opened);
      const stillOpen = silent.filter((s) => s.closedAt === null).length;
      assert.ok(stillOpen > 0 && stillOpen <= 30, `the silent sockets hold at most maxPending (${stillOpen} open)`);

      // The holder connects into the flood, from the same address, and trains to the end.
      const refused: number[] = [];
      const client = new FederationClient({ url: server.url, clientId: 'alice', token, trainer, backoff: { initialMs: 50, maxMs: 200, maxAttempts: 3 } });
      client.on('serverError', (e) => refused.push(e.code));
      const result = await client.run();
      assert.equal(result.finalRound, 2);
      assert.deepEqual(refused, [], 'the token holder is never refused');

      // Every silent socket is gone by its deadline (with a margin for a loaded machine), none kept open.
      const until = Math.max(...silent.map((s) => s.openedAt)) + HELLO_MS + 1500;
      while (silent.some((s) => s.closedAt === null) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      assert.equal(silent.filter((s) => s.closedAt === null).length, 0, 'every silent socket is closed');
      for (const s of silent)
        assert.ok((s.closedAt as number) - s.openedAt <= HELLO_MS + 1500, `closed ${(s.closedAt as number) - s.openedAt} ms after it opened`);
      // Those the caps left alone lived to their deadline, not less.
      const lived = silent.map((s) => (s.closedAt as number) - s.openedAt).sort((a, b) => b - a);
      assert.ok(lived[0] >= HELLO_MS - 300, `the last silent sockets were closed at the hello deadline (longest ${lived[0]} ms)`);
      assert.equal(server.stats().connections, 0);
    } finally {
      for (const s of sockets) s.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
