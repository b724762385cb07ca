// Two gateways on one PostgreSQL database: a client uploads through one, its connection drops, it
// reconnects through the other and uploads the same round again. The retry is acknowledged and counts
// once: the committed round has each client's examples once. Both gateways hear of the commit.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import WebSocket from 'ws';
import { PgFederationStore } from '../../federation/pg-store';
import { startServer, type FederationServer } from '../../federation/server';
import { type FederationConfig, type ServerMessage } from '../../protocol';
import { decodeMessage, encodeMessage } from '../../protocol/node/codec';
import { startPostgres } from '../helpers/postgres';

const K = 32;
const MODEL = new Uint8Array(32).fill(9);
const config: FederationConfig = {
  k: K,
  federationSeed: 4,
  epsilon: 1e-3,
  eta: 0.01,
  tau: 4,
  batchSize: 1,
  sampling: 'uniform',
  weighting: 'examples',
  rounds: 2,
  clientsPerRound: 2,
  deadlineMs: 30_000,
};

/** A protocol-level client: what it was sent, and a way to wait for a message. */
async function connect(url: string, clientId: string): Promise<{ ws: WebSocket; next: (type: ServerMessage['type']) => Promise<ServerMessage> }> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const inbox: ServerMessage[] = [];
  const waiting: (() => void)[] = [];
  ws.on('message', (data: Buffer) => {
    inbox.push(decodeMessage(new Uint8Array(data), { k: K }) as ServerMessage);
    waiting.splice(0).forEach((w) => w());
  });
  await new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject));
  ws.send(encodeMessage({ type: 'hello', clientId, token: '', modelHash: MODEL, lastSyncedRound: 0, generatorVersion: 1 }));
  const next = async (type: ServerMessage['type']): Promise<ServerMessage> => {
    for (;;) {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return inbox.splice(i, 1)[0];
      await new Promise<void>((resolve) => waiting.push(resolve));
    }
  };
  return { ws, next };
}

function upload(round: number, examples: number): Uint8Array {
  return encodeMessage({
    type: 'upload',
    round,
    examples,
    lossBeforeSum: 2,
    lossBeforeCount: 1,
    lossAfterSum: 1,
    lossAfterCount: 1,
    digestRound: round - 1,
    digest: new Uint8Array(32),
    pairs: [{ seed: 3, g: 0.5 }],
  });
}

test('an upload retried through another gateway counts once', { timeout: 60_000 }, async () => {
  const pg = await startPostgres();
  const servers: FederationServer[] = [];
  const stores: PgFederationStore[] = [];
  try {
    const url = await pg.createDatabase('retry');
    for (let i = 0; i < 2; i++) {
      const store = await PgFederationStore.open(url, { password: pg.password, pollMs: 200, electMs: 50 });
      stores.push(store);
      servers.push(await startServer({ config, modelHash: MODEL, generatorVersion: 1, paramCount: 8, store, requireToken: false }));
    }
    const commits = servers.map(() => [] as number[]);
    servers.forEach((s, i) => s.events.on('roundCommitted', (e) => commits[i].push(e.round)));

    const a = await connect(servers[0].url, 'a');
    const b = await connect(servers[1].url, 'b');
    const roundA = await a.next('round');
    assert.equal(roundA.type === 'round' && roundA.round, 1);
    await b.next('round');
    a.ws.send(upload(1, 10));
    assert.equal((await a.next('ack')).type, 'ack');
    // a's connection drops before it hears of a commit; it comes back through the other gateway, which
    // hands it the round again, and uploads again.
    a.ws.terminate();
    const again = await connect(servers[1].url, 'a');
    const round = await again.next('round');
    assert.equal(round.type === 'round' && round.round, 1);
    again.ws.send(upload(1, 10));
    const ack = await again.next('ack');
    assert.ok(ack.type === 'ack' && ack.status === 'accepted');
    b.ws.send(upload(1, 10));
    const result = await b.next('result');
    assert.ok(result.type === 'result');
    assert.equal(result.participants, 2);
    assert.equal(result.examples, 20, "a's upload counts once");
    const record = await stores[0].loadRound(1);
    assert.deepEqual([...(record?.participants ?? [])].sort(), ['a', 'b']);
    assert.equal(record?.examples, 20);
    // Both gateways hear of the one commit, whichever made it.
    for (let i = 0; i < 50 && commits.some((c) => c.length === 0); i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(commits, [[1], [1]]);
    again.ws.terminate();
    b.ws.terminate();
  } finally {
    for (const s of servers) await s.close();
    for (const s of stores) await s.close();
    pg.stop();
  }
});
