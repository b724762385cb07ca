// A token speaks for exactly one client identity: recorded at its first use or granted when it is
// issued. A hello with another token's identity, or a second identity on one token, is refused with
// IdentityMismatch and displaces nobody; a reconnect of the same identity with its own token replaces
// the old connection.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { ErrorCode, type FederationConfig, type Message } from '../../protocol';
import { decodeMessage, encodeMessage } from '../../protocol/node/codec';
import { startServer } from '../../federation/server';
import { createToken, listTokens } from '../../federation/tokens';

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
  clientsPerRound: 5,
  deadlineMs: 5000,
};
const modelHash = new Uint8Array(32).fill(1);

interface Peer {
  readonly ws: WebSocket;
  readonly messages: Message[];
  closed: boolean;
}

/** Connects, says hello and waits until the server answers (welcome or error). */
async function connect(url: string, clientId: string, token: string): Promise<Peer> {
  const ws = new WebSocket(url);
  const peer: Peer = { ws, messages: [], closed: false };
  ws.on('close', () => (peer.closed = true));
  await new Promise<void>((resolve, reject) => {
    ws.on('open', () => ws.send(encodeMessage({ type: 'hello', clientId, token, modelHash, lastSyncedRound: 0, generatorVersion: 1 })));
    ws.on('error', reject);
    ws.on('message', (data: Buffer) => {
      peer.messages.push(decodeMessage(data));
      resolve();
    });
  });
  return peer;
}

const codes = (p: Peer): number[] => p.messages.flatMap((m) => (m.type === 'error' ? [m.code] : []));
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 150));

test('a token authorises one client identity; others are refused without displacing anyone', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-identity-'));
  const server = await startServer({ config, modelHash, generatorVersion: 1, paramCount: 8, storePath: join(dir, 'store') });
  const peers: Peer[] = [];
  try {
    const a = await createToken(server.store, 'alice');
    const b = await createToken(server.store, 'bob');
    const granted = await createToken(server.store, 'carol', 'carol');
    await assert.rejects(createToken(server.store, 'again', 'carol'), /carol/);

    const alice = await connect(server.url, 'alice', a.token);
    peers.push(alice);
    assert.equal(alice.messages[0].type, 'welcome');
    assert.equal((await listTokens(server.store)).find((t) => t.id === a.id)?.clientId, 'alice');

    // Bob's token cannot speak for alice; alice stays connected.
    const impostor = await connect(server.url, 'alice', b.token);
    peers.push(impostor);
    await settle();
    assert.deepEqual(codes(impostor), [ErrorCode.IdentityMismatch]);
    assert.ok(impostor.closed);
    assert.equal(alice.closed, false);
    assert.deepEqual(codes(alice), []);

    // One token, one identity: alice's token cannot open a second id.
    const second = await connect(server.url, 'mallory', a.token);
    peers.push(second);
    await settle();
    assert.deepEqual(codes(second), [ErrorCode.IdentityMismatch]);

    // A granted identity is the only one its token opens; the granted one is welcomed.
    const wrongGrant = await connect(server.url, 'dave', granted.token);
    peers.push(wrongGrant);
    await settle();
    assert.deepEqual(codes(wrongGrant), [ErrorCode.IdentityMismatch]);
    const carol = await connect(server.url, 'carol', granted.token);
    peers.push(carol);
    assert.equal(carol.messages[0].type, 'welcome');

    // Bob's token, unused so far, takes bob (not alice's, carol's).
    const bob = await connect(server.url, 'bob', b.token);
    peers.push(bob);
    assert.equal(bob.messages[0].type, 'welcome');

    // alice reconnecting with her own token replaces her old connection.
    const again = await connect(server.url, 'alice', a.token);
    peers.push(again);
    await settle();
    assert.equal(again.messages[0].type, 'welcome');
    assert.deepEqual(codes(alice), [ErrorCode.DuplicateClient]);
    assert.ok(alice.closed);
  } finally {
    for (const p of peers) p.ws.terminate();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
