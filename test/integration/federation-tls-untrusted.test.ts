// A certificate the client does not trust is a configuration error, not a network hiccup: the client
// fails on the first attempt with the TLS reason instead of retrying with backoff.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
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

test('an untrusted server certificate fails at once with its reason, without retries', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-tls-untrusted-'));
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
    // Default backoff: 20 attempts over minutes, were the failure retried.
    const client = new FederationClient({ url: server.url, clientId: 'alice', token: 'x', trainer });
    let retries = 0;
    client.on('disconnected', () => retries++);
    const started = Date.now();
    await assert.rejects(client.run(), /certificate/i);
    assert.equal(retries, 0);
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
