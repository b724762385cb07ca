// The trainer owns what its weights are and which job it runs, and says so in its status: over the real
// trainer host process and its JSON-RPC stdio transport (as the extension drives it), every status it
// sends is valid against the contract, its `weights` follow each load, run, reset and checkpoint load
// (the same as the request's result says), and its `job` names the request it is working on, back to
// null before the answer comes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { checkTrainerNotification } from '../../contracts/trainer-notifications';
import { baseWeights, Notifications, trainerClient, type StartTrainingParams, type TrainerClient, type TrainerStatus } from '../../contracts/trainer-rpc';
import { startServer } from '../../federation/server';
import { GENERATOR_VERSION } from '../../trainer/zo/generator';
import { writeCodeCorpus } from '../helpers/code-corpus';

const root = join(import.meta.dirname, '..', '..');
const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'trainer', 'host', 'main.ts')], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
child.stderr.resume();
let connection: MessageConnection;
let client: TrainerClient;
let dir: string;
let model: { parameters: number; modelIdentity: string };
/** Every status the trainer sent, checked against the contract as the extension checks it. */
const statuses: TrainerStatus[] = [];
const last = (): TrainerStatus => {
  const s = statuses.at(-1);
  assert.ok(s, 'the trainer sent a status');
  return s;
};
/** The statuses sent while `work` ran. */
async function during<T>(work: () => Promise<T>): Promise<{ result: T; sent: TrainerStatus[] }> {
  const from = statuses.length;
  const result = await work();
  return { result, sent: statuses.slice(from) };
}

const data = () => ({ path: join(dir, 'code'), include: ['**/*.ts'], heldOutFraction: 0.25, seqLen: 32 });
const train = (over: Partial<StartTrainingParams> = {}): StartTrainingParams => ({
  data: data(),
  steps: 4,
  k: 64,
  federationSeed: 1,
  epsilon: 1e-3,
  eta: 1e-4,
  keep: 'last',
  batchSize: 1,
  evalEvery: 0,
  evalExamples: 2,
  checkpointPath: join(dir, 'run-a', 'checkpoint.json'),
  runId: 'run-a',
  ...over,
});

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedkseed-status-weights-'));
  writeCodeCorpus(join(dir, 'code'), 12);
  mkdirSync(join(dir, 'run-a')); // the run's folder, as the extension makes it
  connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
  connection.onNotification(Notifications.status.method, (raw: unknown) => {
    const checked = checkTrainerNotification(Notifications.status.method, raw);
    assert.ok(checked?.ok, `a status outside the contract: ${JSON.stringify(raw)}`);
    statuses.push(checked.value as TrainerStatus);
  });
  connection.listen();
  client = trainerClient(connection);
});
after(() => {
  connection.dispose();
  child.stdin.end();
  rmSync(dir, { recursive: true, force: true });
});

test('a trainer holds no weights while it loads its model, then the base model', async () => {
  const { result, sent } = await during(() => client.request('initialize', { provider: 'cpu', threads: 1, kernel: 'auto' }));
  model = result;
  assert.equal(sent[0]?.state, 'loading');
  assert.equal(sent[0]?.weights, null, 'no model, no weights');
  assert.deepEqual(last().weights, baseWeights);
  assert.equal(last().state, 'idle');
  assert.equal(last().job, null);
});

test("a local run's status names its job while it runs, and its weights once it ends, as its result does", async () => {
  const { result, sent } = await during(() => client.request('startTraining', train()));
  assert.ok(
    sent.some((s) => s.job === 'training' && s.state === 'training'),
    'the status says the trainer is training',
  );
  assert.deepEqual(result.weights, { kind: 'local', steps: 4, round: 0, runId: 'run-a', restored: false });
  assert.deepEqual(last().weights, result.weights, 'the status holds the weights the run left');
  assert.equal(last().job, null, 'the job is over before its answer comes');
});

test('Evaluate is a job of its own and leaves the weights as they were', async () => {
  const before = last().weights;
  const { result, sent } = await during(() => client.request('evaluate', { data: data(), batchSize: 1, maxExamples: 2 }));
  assert.ok(
    sent.some((s) => s.job === 'evaluation'),
    'the status says the trainer is evaluating',
  );
  assert.deepEqual(result.weights, before);
  assert.deepEqual(last().weights, before);
  assert.equal(last().job, null);
});

test('resetWeights and loadCheckpoint change the weights the status reports, as their results say', async () => {
  const reset = await client.request('resetWeights', {});
  assert.deepEqual(reset.weights, baseWeights);
  assert.deepEqual(last().weights, baseWeights);

  const { result: loaded, sent } = await during(() => client.request('loadCheckpoint', { path: join(dir, 'run-a', 'checkpoint.json'), runId: 'run-a' }));
  assert.deepEqual(loaded.weights, { kind: 'local', steps: 4, round: 0, runId: 'run-a', restored: true });
  assert.ok(
    sent.some((s) => s.job === 'checkpoint'),
    'loading a checkpoint is a job',
  );
  assert.deepEqual(last().weights, loaded.weights);
  assert.equal(last().job, null);

  // A checkpoint that is not there changes nothing.
  await assert.rejects(client.request('loadCheckpoint', { path: join(dir, 'none.json'), runId: 'run-b' }));
  assert.deepEqual(last().weights, loaded.weights);
  assert.equal(last().job, null);
});

test('a run that fails after the trainer dropped its weights for it reports the base model, not the weights it had', async () => {
  await assert.rejects(client.request('startTraining', train({ data: { ...data(), path: join(dir, 'missing') }, runId: 'run-c', checkpointPath: undefined })));
  assert.deepEqual(last().weights, baseWeights);
  assert.equal(last().job, null);
});

test("a federation's status holds the replica of each round synced, with its run, and the last one once it ends", async () => {
  const server = await startServer({
    config: {
      k: 64,
      federationSeed: 3,
      epsilon: 1e-3,
      eta: 1e-4,
      tau: 2,
      batchSize: 1,
      sampling: 'uniform',
      weighting: 'examples',
      rounds: 2,
      clientsPerRound: 1,
      deadlineMs: 60_000,
    },
    modelHash: Buffer.from(model.modelIdentity, 'hex'),
    generatorVersion: GENERATOR_VERSION,
    paramCount: model.parameters,
    storePath: join(dir, 'federation-store'),
    requireToken: false,
    minClients: 1,
  });
  try {
    const { result, sent } = await during(() =>
      client.request('joinFederation', {
        url: server.url,
        token: '',
        clientId: 'status',
        data: data(),
        batchSize: 1,
        heldOutExamples: 2,
        clientSeed: 0,
        runId: 'fed-a',
      }),
    );
    assert.equal(result.finalRound, 2);
    assert.deepEqual(result.weights, { kind: 'federation', steps: 0, round: 2, runId: 'fed-a', restored: false });
    assert.ok(
      sent.some((s) => s.job === 'federation' && s.state === 'connected'),
      'the status says the trainer is in a federation',
    );
    const federated = sent.flatMap((s) => (s.weights?.kind === 'federation' ? [s.weights] : []));
    assert.deepEqual([...new Set(federated.map((w) => w.round))], [1, 2], 'each round synced, in order');
    assert.ok(federated.every((w) => w.runId === 'fed-a'));
    assert.deepEqual(last().weights, result.weights);
    assert.equal(last().job, null);
  } finally {
    await server.close();
  }
});

test('reloading the model holds no weights until it is loaded, then the base model again', async () => {
  await client.request('loadCheckpoint', { path: join(dir, 'run-a', 'checkpoint.json'), runId: 'run-a' });
  assert.equal(last().weights?.kind, 'local');
  const { sent } = await during(() => client.request('initialize', { provider: 'cpu', threads: 1, kernel: 'auto' }));
  assert.equal(sent[0]?.weights, null);
  assert.deepEqual(last().weights, baseWeights);
});
