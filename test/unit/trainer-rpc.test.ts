// The extension's client and the trainer's `serve` share one method table: over a real vscode-jsonrpc
// connection (an in-memory stream pair), every method's params and result are checked at both ends,
// and a malformed one is refused with an error that names the method.
import * as assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createMessageConnection, ResponseError, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { checkTrainerNotification } from '../../contracts/trainer-notifications';
import {
  baseWeights,
  idleTrainerStatus,
  Notifications,
  Requests,
  TrainerErrorCodes,
  TrainerMethods,
  TrainerNotifications,
  trainerClient,
  type ParamsOf,
  type ResultOf,
  type TrainerMethodName,
} from '../../contracts/trainer-rpc';
import { serve, type Handlers } from '../../trainer/host/serve';

type Table = typeof TrainerMethods;
type Sample<M extends TrainerMethodName> = { params: ParamsOf<Table[M]>; result: ResultOf<Table[M]> };

const data = { path: '/data', heldOutFraction: 0.1, seqLen: 64 };
const local = { kind: 'local' as const, steps: 20, round: 0, runId: 'r1', restored: false };

/** A valid request and answer of every method; the compiler holds each to its schemas' types. */
const samples: { [M in TrainerMethodName]: Sample<M> } = {
  initialize: {
    params: { provider: 'cpu', threads: 1, kernel: 'auto' },
    result: { parameters: 10, provider: 'cpu', kernel: 'js', modelPath: '/m/model.onnx', modelIdentity: 'ab12' },
  },
  evaluate: {
    params: { data, batchSize: 4, maxExamples: 64 },
    result: { loss: 2.5, perplexity: 12.2, tokens: 100, examples: 8, heldOutExamples: 8, weights: baseWeights, accuracy: 0.25, generation: null },
  },
  startTraining: {
    params: { data, steps: 20, k: 8, federationSeed: 1, epsilon: 1e-3, eta: 1e-4, batchSize: 4, evalEvery: 10, evalExamples: 64, runId: 'r1' },
    result: {
      stepsRun: 20,
      skipped: 0,
      heldOutBefore: 2.5,
      heldOutAfter: 2.4,
      stopped: false,
      checkpointPath: '/c.json',
      totalSteps: 20,
      best: { step: 20, loss: 2.4 },
      weights: local,
    },
  },
  joinFederation: {
    params: { url: 'ws://127.0.0.1:7070', token: '', clientId: 'c1', data, batchSize: 4, heldOutExamples: 16, clientSeed: 0 },
    result: { finalRound: 3, digest: 'ff', stopped: false, weights: { ...baseWeights, kind: 'federation', round: 3 } },
  },
  stop: { params: {}, result: { stopped: true } },
  exportModel: {
    params: { out: '/out/model.onnx' },
    result: { path: '/out/model.onnx', externalDataPath: null, weightBytes: 40, copied: ['tokenizer.json'], weights: local },
  },
  loadCheckpoint: { params: { path: '/c.json', runId: 'r1' }, result: { weights: { ...local, restored: true } } },
  resetWeights: { params: {}, result: { weights: baseWeights } },
  complete: {
    params: { prefix: 'const x = ', source: 'current', maxTokens: 8, sampling: { mode: 'greedy' }, stop: 'line' },
    result: {
      text: '1;',
      tokens: 2,
      finish: 'stop',
      firstTokenMs: 3,
      totalMs: 5,
      promptTokens: 4,
      source: 'current',
      weights: local,
      decoder: 'none',
      modelPath: '/m/model.onnx',
    },
  },
};

const names = Object.keys(TrainerMethods) as TrainerMethodName[];

/** Two real connections joined by in-memory pipes: the extension's end and the trainer's. */
function connectionPair(): { client: MessageConnection; host: MessageConnection; close(): void } {
  const up = new PassThrough();
  const down = new PassThrough();
  const client = createMessageConnection(new StreamMessageReader(down), new StreamMessageWriter(up));
  const host = createMessageConnection(new StreamMessageReader(up), new StreamMessageWriter(down));
  client.listen();
  host.listen();
  return {
    client,
    host,
    close: () => {
      client.dispose();
      host.dispose();
      up.destroy();
      down.destroy();
    },
  };
}

/** Handlers answering each method's sample, recording the params they were given. */
function sampleHandlers(seen: Map<string, unknown>, answer: (name: TrainerMethodName) => unknown = (name) => samples[name].result): Handlers<Table> {
  const entries = names.map((name) => [name, async (params: unknown) => (seen.set(name, params), answer(name))]);
  return Object.fromEntries(entries) as Handlers<Table>;
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof Error);
    return err;
  }
  assert.fail('the request was answered');
}

test('every method has its params and result schema, under its own wire name', () => {
  const wire = new Set<string>();
  for (const name of names) {
    const spec = TrainerMethods[name];
    assert.equal(spec.type.method, `fedkseed/${name}`);
    assert.equal(Requests[name], spec.type);
    assert.ok(spec.params.safeParse(samples[name].params).success, `${name} params`);
    assert.ok(spec.result.safeParse(samples[name].result).success, `${name} result`);
    assert.equal(spec.params.safeParse(null).success, false, `${name} params refuse null`);
    assert.equal(spec.result.safeParse(null).success, false, `${name} result refuses null`);
    wire.add(spec.type.method);
  }
  for (const [name, spec] of Object.entries(TrainerNotifications)) {
    assert.equal(Notifications[name as keyof typeof Notifications], spec.type);
    assert.equal(checkTrainerNotification(spec.type.method, null)?.ok, false, name);
    wire.add(spec.type.method);
  }
  assert.equal(wire.size, names.length + Object.keys(TrainerNotifications).length, 'no two methods share a wire name');
  assert.deepEqual(checkTrainerNotification(Notifications.status.method, idleTrainerStatus), { ok: true, value: idleTrainerStatus });
});

test('the client and the host round-trip every method through the one table', async () => {
  const pair = connectionPair();
  try {
    const seen = new Map<string, unknown>();
    serve(pair.host, TrainerMethods, sampleHandlers(seen));
    const client = trainerClient(pair.client);
    for (const name of names) {
      const { params, result } = samples[name];
      // Each name with its own sample: the loop's union is narrowed back to one method at a time.
      const answered: unknown = await (client.request as (n: TrainerMethodName, p: unknown) => Promise<unknown>)(name, params);
      assert.deepEqual(answered, result, name);
      assert.deepEqual(seen.get(name), params, name);
    }
    // Typed end to end: the result's type is the method's own.
    const weights = (await client.request('resetWeights', {})).weights;
    assert.equal(weights.kind, 'base');
  } finally {
    pair.close();
  }
});

test('malformed params are refused by the client before sending, and by the host, naming the method', async () => {
  const pair = connectionPair();
  try {
    const seen = new Map<string, unknown>();
    serve(pair.host, TrainerMethods, sampleHandlers(seen));
    const client = trainerClient(pair.client);
    const bad = { ...samples.startTraining.params, steps: 0 };
    const refused = await rejection(client.request('startTraining', bad));
    assert.ok(refused instanceof ResponseError && refused.code === TrainerErrorCodes.invalidParams);
    assert.match(refused.message, /^invalid startTraining parameters: steps:/);
    assert.equal(seen.has('startTraining'), false, 'the handler never ran');
    // A peer that skips the client's check meets the host's, in the same words.
    const raw = await rejection(pair.client.sendRequest(Requests.joinFederation, { ...samples.joinFederation.params, url: 'http://x' }));
    assert.ok(raw instanceof ResponseError && raw.code === TrainerErrorCodes.invalidParams);
    assert.match(raw.message, /^invalid joinFederation parameters: url: must start with ws:\/\//);
    assert.equal(seen.has('joinFederation'), false);
  } finally {
    pair.close();
  }
});

test('a malformed result is refused by the host, and by the client when a peer sends one anyway', async () => {
  const pair = connectionPair();
  try {
    const broken = (name: TrainerMethodName) => (name === 'exportModel' ? { path: '/out/model.onnx' } : samples[name].result);
    serve(pair.host, TrainerMethods, sampleHandlers(new Map(), broken));
    const client = trainerClient(pair.client);
    const refused = await rejection(client.request('exportModel', samples.exportModel.params));
    assert.ok(refused instanceof ResponseError && refused.code === TrainerErrorCodes.failed);
    assert.match(refused.message, /invalid exportModel result: .*weightBytes/);
    assert.deepEqual(await client.request('stop', {}), { stopped: true });
  } finally {
    pair.close();
  }
  const rogue = connectionPair();
  try {
    // A host answering outside `serve`: the client still checks what comes back.
    rogue.host.onRequest(Requests.evaluate, () => ({ loss: 'low' }) as never);
    const refused = await rejection(trainerClient(rogue.client).request('evaluate', samples.evaluate.params));
    assert.match(refused.message, /^the trainer sent an invalid evaluate result: loss:/);
  } finally {
    rogue.close();
  }
});
