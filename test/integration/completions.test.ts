// Completions from the trainer host on the bundled model (real onnxruntime sessions, real tokenizer):
// the companion KV-cache graph decodes the same tokens as whole-sequence forwards; a cancelled request
// stops between two tokens; completions are served while a local run trains, from copies of its weights
// taken at rest, and the run ends with exactly the weights it has without them; during a federation they
// come from the replica of the last round synced.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openCompletionDecoder } from '../../trainer/complete/decoders';
import { complete } from '../../trainer/complete/generator';
import { snapshotWeights } from '../../trainer/complete/weights';
import { openEngine } from '../../trainer/engine';
import type { HostNotifier } from '../../trainer/host/notifier';
import { TrainerSession } from '../../trainer/host/session';
import { loadCheckpoint } from '../../trainer/zo/checkpoint';
import type { CompleteParams, StartTrainingParams } from '../../contracts/trainer-payloads';
import { startServer } from '../../federation/server';
import { GENERATOR_VERSION } from '../../trainer/zo/generator';
import { writeCodeCorpus } from '../helpers/code-corpus';

const PREFIX = 'export function loadOrders(items: Order[], limit = 10): Order[] {\n  return items.';
const quiet: HostNotifier = {
  status: () => undefined,
  steps: () => undefined,
  evaluation: () => undefined,
  metrics: () => undefined,
  roundCompleted: () => undefined,
  seedProbabilities: () => undefined,
  log: () => undefined,
};
const greedy = (over: Partial<CompleteParams> = {}): CompleteParams => ({
  prefix: PREFIX,
  source: 'current',
  maxTokens: 16,
  sampling: { mode: 'greedy' },
  stop: 'none',
  ...over,
});

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedkseed-completions-'));
  writeCodeCorpus(join(dir, 'code'), 24);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('the bundled model decodes over a companion KV cache, with the tokens of whole-sequence decoding', async () => {
  const engine = await openEngine({ threads: 1 });
  const decoder = await openCompletionDecoder(engine.model, engine.located.config, 1);
  try {
    assert.equal(decoder.kind, 'companion-cache');
    decoder.bindWeights(await snapshotWeights(engine));
    const prompt = engine.tokenizer.encode(PREFIX);
    const decode = (t: readonly number[]) => engine.tokenizer.decode(t);
    const o = { maxTokens: 24, sampling: { mode: 'greedy' } as const, stop: 'none' as const, eosId: engine.tokenizer.eosId };
    const cached = await complete(decoder.model, decode, prompt, o);
    const uncached = await complete(decoder.model, decode, prompt, { ...o, useCache: false });
    assert.equal(cached.tokens, 24);
    assert.equal(cached.text, uncached.text);
    assert.ok(cached.firstTokenMs !== null && cached.firstTokenMs <= cached.totalMs);
  } finally {
    await decoder.release();
    await engine.close();
  }
});

test('the host completes from the base model and from its current weights, and a cancellation stops the generator', async () => {
  const session = new TrainerSession(quiet);
  try {
    await session.initialize({ provider: 'cpu', threads: 1, kernel: 'auto' });
    const base = await session.complete(greedy({ source: 'base' }), new AbortController().signal);
    const current = await session.complete(greedy(), new AbortController().signal);
    assert.equal(base.text, current.text, 'before any training the current weights are the base model');
    assert.equal(current.weights?.kind, 'base');
    assert.equal(base.weights, null);
    assert.equal(current.tokens, 16);
    assert.equal(current.decoder, 'companion-cache');
    const whole = await session.complete(greedy({ useCache: false }), new AbortController().signal);
    assert.equal(whole.decoder, 'no-cache', 'a request without the cache says it decoded without one');
    assert.equal(whole.text, current.text);

    const line = await session.complete(greedy({ stop: 'line', maxTokens: 64 }), new AbortController().signal);
    assert.ok(!line.text.trimStart().includes('\n'), `one line: ${JSON.stringify(line.text)}`);

    const cancelled = new AbortController();
    cancelled.abort();
    const none = await session.complete(greedy(), cancelled.signal);
    assert.equal(none.finish, 'cancelled');
    assert.equal(none.tokens, 0);

    // Cancelled while it decodes: it ends before its token limit.
    const typing = new AbortController();
    const pending = session.complete(greedy({ maxTokens: 200 }), typing.signal);
    setTimeout(() => typing.abort(), 30);
    const partial = await pending;
    assert.equal(partial.finish, 'cancelled');
    assert.ok(partial.tokens < 200, `${partial.tokens} tokens`);

    // A newer request supersedes the one decoding.
    const older = session.complete(greedy({ maxTokens: 200 }), new AbortController().signal);
    const newer = await session.complete(greedy(), new AbortController().signal);
    assert.equal((await older).finish, 'cancelled');
    assert.equal(newer.tokens, 16);
  } finally {
    await session.dispose();
  }
});

test('completions are served while a local run trains, and the run ends with the weights it has without them', async () => {
  const train = (name: string): StartTrainingParams => ({
    data: { path: join(dir, 'code'), include: ['**/*.ts'], heldOutFraction: 0.2, seqLen: 32 },
    steps: 40,
    k: 256,
    federationSeed: 5,
    epsilon: 1e-3,
    eta: 1e-4,
    batchSize: 2,
    evalEvery: 0,
    evalExamples: 4,
    checkpointPath: join(dir, `${name}.json`),
  });
  const session = new TrainerSession(quiet);
  try {
    await session.initialize({ provider: 'cpu', threads: 1, kernel: 'auto' });
    await session.complete(greedy(), new AbortController().signal);
    const running = session.startTraining(train('with'), new AbortController().signal);
    const served: { kind: string; steps: number }[] = [];
    let done = false;
    void running.finally(() => (done = true));
    while (!done) {
      const r = await session.complete(greedy({ maxTokens: 4 }), new AbortController().signal);
      if (r.weights) served.push({ kind: r.weights.kind, steps: r.weights.steps });
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const withCompletions = await running;
    assert.equal(withCompletions.stepsRun, 40);
    assert.ok(
      served.some((w) => w.kind === 'local' && w.steps > 0 && w.steps < 40),
      `served from ${JSON.stringify(served)}`,
    );
    const after = await session.complete(greedy(), new AbortController().signal);
    assert.deepEqual(after.weights && { kind: after.weights.kind, steps: after.weights.steps }, { kind: 'local', steps: 40 });

    const without = await session.startTraining(train('without'), new AbortController().signal);
    assert.deepEqual(loadCheckpoint(join(dir, 'with.json')).coefficients, loadCheckpoint(join(dir, 'without.json')).coefficients);
    assert.equal(withCompletions.heldOutAfter, without.heldOutAfter);
  } finally {
    await session.dispose();
  }
});

test('completions during a federation come from the replica of the last round synced, and the rounds go on', async () => {
  const session = new TrainerSession(quiet);
  const info = await session.initialize({ provider: 'cpu', threads: 1, kernel: 'auto' });
  const server = await startServer({
    config: {
      k: 64,
      federationSeed: 3,
      epsilon: 1e-3,
      eta: 1e-4,
      tau: 4,
      batchSize: 1,
      sampling: 'uniform',
      weighting: 'examples',
      rounds: 3,
      clientsPerRound: 1,
      deadlineMs: 60_000,
    },
    modelHash: Buffer.from(info.modelIdentity, 'hex'),
    generatorVersion: GENERATOR_VERSION,
    paramCount: info.parameters,
    storePath: join(dir, 'federation-store'),
    requireToken: false,
    minClients: 1,
  });
  try {
    await session.complete(greedy({ maxTokens: 2 }), new AbortController().signal);
    let done = false;
    const federation = session.joinFederation(
      {
        url: server.url,
        token: '',
        clientId: 'completions',
        data: { path: join(dir, 'code'), include: ['**/*.ts'], heldOutFraction: 0.2, seqLen: 32 },
        batchSize: 1,
        heldOutExamples: 2,
        clientSeed: 2,
      },
      new AbortController().signal,
    );
    void federation.finally(() => (done = true));
    const rounds: number[] = [];
    while (!done) {
      const r = await session.complete(greedy({ maxTokens: 4 }), new AbortController().signal);
      assert.equal(r.tokens, 4);
      rounds.push(r.weights?.round ?? -1);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal((await federation).finalRound, 3);
    assert.deepEqual(
      [...rounds].sort((a, b) => a - b),
      rounds,
      `rounds never go back: ${rounds.join(',')}`,
    );
    const after = await session.complete(greedy(), new AbortController().signal);
    assert.deepEqual(after.weights && { kind: after.weights.kind, round: after.weights.round }, { kind: 'federation', round: 3 });
  } finally {
    await server.close();
    await session.dispose();
  }
});
