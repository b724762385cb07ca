// wss:// from certificate files: a client that trusts the server's certificate completes the
// federation over TLS; one that does not is refused by the TLS handshake, not by the protocol.
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeSelfSignedCert } from '../helpers/self-signed';
import { startServer } from '../../federation/server';
import type { FederationConfig } from '../../protocol';
import { FederationClient } from '../../federation/client/federation-client';
import { QuadraticToyTrainer } from '../../bench/toy-trainer';

const config: FederationConfig = {
  k: 64,
  federationSeed: 9,
  epsilon: 1e-3,
  eta: 0.05,
  tau: 5,
  batchSize: 1,
  sampling: 'pro',
  weighting: 'examples',
  rounds: 2,
  clientsPerRound: 1,
  deadlineMs: 5000,
};

test('a federation over wss:// with a self-signed certificate', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-tls-'));
  const { certFile, keyFile } = writeSelfSignedCert(dir);
  const trainer = new QuadraticToyTrainer({ dimension: 8, clientSeed: 1 });
  const server = await startServer({
    config,
    modelHash: trainer.modelHash,
    generatorVersion: 1,
    paramCount: 8,
    storePath: join(dir, 'store'),
    requireToken: false,
    tls: { certFile, keyFile },
  });
  try {
    assert.match(server.url, /^wss:\/\/127\.0\.0\.1:\d+$/);

    const untrusting = new FederationClient({
      url: server.url,
      clientId: 'mallory',
      token: 'x',
      trainer: new QuadraticToyTrainer({ dimension: 8, clientSeed: 2 }),
      backoff: { initialMs: 10, maxMs: 20, maxAttempts: 2 },
    });
    await assert.rejects(untrusting.run(), /certificate|self.signed/i);

    const trusting = new FederationClient({ url: server.url, clientId: 'alice', token: 'x', trainer, tls: { ca: readFileSync(certFile) } });
    const result = await trusting.run();
    assert.equal(result.finalRound, 2);
    assert.equal(result.digest, await trainer.digest());
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
