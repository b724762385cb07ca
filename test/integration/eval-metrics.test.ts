// Held-out accuracy and next-line exact match on real models: the accuracy read from one forward over
// each whole example equals the one from whole-sequence forwards of every prefix (an independent route
// through the training graph), on a torch-exported fixture with a KV cache and on the bundled model.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadDataset } from '../../trainer/data/dataset';
import type { Example } from '../../trainer/data/examples';
import { openEngine, type Engine } from '../../trainer/engine';
import { argmaxRow } from '../../trainer/model/generate';
import { metricsScorer } from '../../trainer/eval/metrics';
import type { HostNotifier } from '../../trainer/host/notifier';
import { TrainerSession } from '../../trainer/host/session';
import type { Evaluation, HeldOutMetricsNotification } from '../../contracts/trainer-payloads';
import { startServer } from '../../federation/server';
import { GENERATOR_VERSION } from '../../trainer/zo/generator';
import { spawnSync } from 'node:child_process';
import { parseJsonLine } from '../../contracts/parse';
import { trainEventSchema } from '../../contracts/cli-events';
import { writeCodeCorpus } from '../helpers/code-corpus';
import { FIXTURES } from '../helpers/model-fixtures';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedkseed-metrics-'));
  writeCodeCorpus(join(dir, 'code'), 16);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Top-1 accuracy by whole-sequence forwards of each prefix (the training graph's last-position logits). */
async function prefixAccuracy(engine: Engine, examples: readonly Example[]): Promise<number> {
  let correct = 0;
  let targets = 0;
  for (const e of examples) {
    for (let t = 1; t < e.ids.length; t++) {
      const ids = BigInt64Array.from(e.ids.subarray(0, t), BigInt);
      const logits = await engine.session.lastLogits(ids, new BigInt64Array(t).fill(1n), 1, t);
      targets++;
      if (argmaxRow(logits, 0, logits.length) === e.ids[t]) correct++;
    }
  }
  return correct / targets;
}

for (const [name, model] of [
  ['a torch export with a KV cache (Optimum)', join(FIXTURES, 'optimum-gpt2', 'decoder_with_past_model.onnx')],
  ['the bundled model (companion cache graph)', undefined],
] as const) {
  test(`top-1 accuracy of ${name} matches the prefix-by-prefix route; exact match is a share`, async () => {
    const engine = await openEngine({ model, threads: 1 });
    const scorer = metricsScorer(engine, 1);
    try {
      const data = await loadDataset(join(dir, 'code'), { tokenizer: engine.tokenizer, seqLen: 24, include: ['**/*.ts'], heldOutFraction: 0.25 });
      const examples = data.heldOut.slice(0, 3);
      const m = await scorer.score(examples, { generationExamples: 3, maxNewTokens: 12 });
      assert.ok(m.accuracy !== null && m.accuracy >= 0 && m.accuracy <= 1);
      assert.equal(
        m.accuracyTargets,
        examples.reduce((n, e) => n + e.ids.length - 1, 0),
      );
      assert.ok(Math.abs(m.accuracy - (await prefixAccuracy(engine, examples))) < 1e-12, `accuracy ${m.accuracy}`);
      assert.equal(m.rougeL, null);
      if (m.generated > 0) assert.ok(m.exactMatch !== null && m.exactMatch >= 0 && m.exactMatch <= 1);
    } finally {
      await scorer.release();
      await engine.close();
    }
  });
}

test('a model exported without a cache scores the same top-1 accuracy as its export with one (same weights)', async () => {
  const accuracyOf = async (file: string) => {
    const engine = await openEngine({ model: join(FIXTURES, 'optimum-gpt2', file), threads: 1 });
    const scorer = metricsScorer(engine, 1);
    try {
      const data = await loadDataset(join(dir, 'code'), { tokenizer: engine.tokenizer, seqLen: 24, include: ['**/*.ts'], heldOutFraction: 0.25 });
      return await scorer.score(data.heldOut.slice(0, 3), { generationExamples: 1, maxNewTokens: 4 });
    } finally {
      await scorer.release();
      await engine.close();
    }
  };
  const withCache = await accuracyOf('decoder_with_past_model.onnx');
  const without = await accuracyOf('decoder_model.onnx');
  assert.ok(without.accuracy !== null && withCache.accuracy !== null);
  assert.equal(without.accuracyTargets, withCache.accuracyTargets);
  assert.equal(without.accuracy, withCache.accuracy);
});

test('a local run reports the accuracy and the next-line exact match with each held-out evaluation, in a notification of their own; Evaluate scores them too', async () => {
  const evaluations: Evaluation[] = [];
  const metrics: HeldOutMetricsNotification[] = [];
  const notify: HostNotifier = {
    status: () => undefined,
    steps: () => undefined,
    evaluation: (e) => evaluations.push(e),
    metrics: (m) => metrics.push(m),
    roundCompleted: () => undefined,
    seedProbabilities: () => undefined,
    log: () => undefined,
  };
  const session = new TrainerSession(notify);
  try {
    await session.initialize({ provider: 'cpu', threads: 1, kernel: 'auto' });
    await session.startTraining(
      {
        data: { path: join(dir, 'code'), include: ['**/*.ts'], heldOutFraction: 0.25, seqLen: 32 },
        steps: 4,
        k: 64,
        federationSeed: 1,
        epsilon: 1e-3,
        eta: 1e-4,
        batchSize: 1,
        evalEvery: 2,
        evalExamples: 3,
      },
      new AbortController().signal,
    );
    assert.deepEqual(
      evaluations.map((e) => e.step),
      [0, 2, 4],
    );
    assert.deepEqual(
      metrics.map((m) => m.step),
      [0, 2, 4],
    );
    for (const e of metrics) {
      assert.ok(typeof e.accuracy === 'number' && e.accuracy >= 0 && e.accuracy <= 1, `accuracy ${e.accuracy}`);
      assert.ok(e.exactMatch === null || (e.exactMatch >= 0 && e.exactMatch <= 1));
      assert.equal(e.rougeL, null);
    }
    // Evaluate scores the same measures of the weights the run ended with, as its last evaluation did.
    const evaluated = await session.evaluate(
      { data: { path: join(dir, 'code'), include: ['**/*.ts'], heldOutFraction: 0.25, seqLen: 32 }, batchSize: 1, maxExamples: 3 },
      new AbortController().signal,
    );
    assert.equal(evaluated.accuracy, metrics.at(-1)?.accuracy);
    assert.equal(evaluated.generation, metrics.at(-1)?.exactMatch);
  } finally {
    await session.dispose();
  }
});

test('a federation reports the measures of the base model and of each replica it commits', async () => {
  const metrics: HeldOutMetricsNotification[] = [];
  const notify: HostNotifier = {
    status: () => undefined,
    steps: () => undefined,
    evaluation: () => undefined,
    metrics: (m) => metrics.push(m),
    roundCompleted: () => undefined,
    seedProbabilities: () => undefined,
    log: () => undefined,
  };
  const session = new TrainerSession(notify);
  const info = await session.initialize({ provider: 'cpu', threads: 1, kernel: 'auto' });
  const server = await startServer({
    config: {
      k: 64,
      federationSeed: 9,
      epsilon: 1e-3,
      eta: 1e-4,
      tau: 3,
      batchSize: 1,
      sampling: 'uniform',
      weighting: 'examples',
      rounds: 2,
      clientsPerRound: 1,
      deadlineMs: 60_000,
    },
    modelHash: Buffer.from(info.modelIdentity, 'hex'),
    generatorVersion: GENERATOR_VERSION,
    paramCount: info.parameters,
    storePath: join(dir, 'store'),
    requireToken: false,
    minClients: 1,
  });
  try {
    const result = await session.joinFederation(
      {
        url: server.url,
        token: '',
        clientId: 'metrics',
        data: { path: join(dir, 'code'), include: ['**/*.ts'], heldOutFraction: 0.25, seqLen: 32 },
        batchSize: 1,
        heldOutExamples: 3,
        clientSeed: 1,
      },
      new AbortController().signal,
    );
    assert.equal(result.finalRound, 2);
    // The measures are scored beside the rounds: the last may come after the federation ends.
    for (let i = 0; i < 200 && metrics.length < 3; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      metrics.map((m) => [m.round, m.step]),
      [
        [0, 0],
        [1, 3],
        [2, 6],
      ],
    );
    for (const m of metrics) assert.ok(m.accuracy !== null && m.accuracy >= 0 && m.accuracy <= 1);
  } finally {
    await server.close();
    await session.dispose();
  }
});

test('fedkseed train --measures --json adds the accuracy and the next-line exact match to each evaluation line', () => {
  const root = join(import.meta.dirname, '..', '..');
  const args = [
    'train',
    '--data',
    join(dir, 'code'),
    '--include',
    '**/*.ts',
    '--held-out',
    '0.25',
    '--steps',
    '2',
    '--eval-every',
    '0',
    '--eval-examples',
    '3',
    '--seq-len',
    '32',
    '--batch-size',
    '1',
    '--k',
    '64',
    '--threads',
    '1',
  ];
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'cli', 'main.ts'), ...args, '--out', join(dir, 'cli.json'), '--measures', '--json'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const evals = r.stdout.split('\n').flatMap((line) => {
    const e = parseJsonLine(trainEventSchema, line);
    return e?.event === 'eval' ? [e] : [];
  });
  assert.deepEqual(
    evals.map((e) => e.step),
    [0, 2],
  );
  for (const e of evals) assert.ok(typeof e.accuracy === 'number' && e.accuracy >= 0 && e.accuracy <= 1, `accuracy ${e.accuracy}`);
});
