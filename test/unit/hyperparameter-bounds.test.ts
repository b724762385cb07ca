// One bound per hyperparameter (protocol/config-limits.ts), held everywhere a value enters: the WELCOME
// codec, the zod schemas of the contracts, stores and backups, checkpoints, the seed sampler, the command
// line and the extension's settings in package.json. Each place is asked about the values at and just
// beyond each end of the bound.
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type FederationConfig } from '../../protocol';
import { decodeMessage, encodeMessage } from '../../protocol/node/codec';
import { HYPERPARAMETER_BOUNDS, type Bound, type Hyperparameter } from '../../protocol/config-limits';
import { federationConfigSchema, hyperparameter } from '../../protocol/config-schema';
import { startTrainingParamsSchema } from '../../contracts/trainer-payloads';
import { hyperparameterArg, seedCount } from '../../cli/options';
import { SeedSampler } from '../../trainer/zo/seed-sampler';
import { loadCheckpoint, makeCheckpoint } from '../../trainer/zo/checkpoint';

const config: FederationConfig = {
  k: 16,
  federationSeed: 7,
  epsilon: 1e-3,
  eta: 1e-4,
  shape: 'isotropic',
  tau: 8,
  batchSize: 2,
  sampling: 'uniform',
  weighting: 'examples',
  rounds: 3,
  clientsPerRound: 1,
  deadlineMs: 60_000,
};
const K = HYPERPARAMETER_BOUNDS.k.max;

/** The values just inside and just outside a bound (its unbounded top left out). */
function edges(b: Bound): { inside: number[]; outside: number[] } {
  const step = b.integer ? 1 : b.min === 0 ? Number.MIN_VALUE : b.min * 1e-9;
  const inside = [b.exclusiveMin ? b.min + (b.integer ? 1 : Math.max(step, 1e-12)) : b.min];
  const outside = [b.exclusiveMin ? b.min : b.min - step];
  if (b.max !== Number.MAX_VALUE) {
    inside.push(b.max);
    outside.push(b.integer ? b.max + 1 : b.max * (1 + 1e-9));
  }
  if (b.integer) outside.push(b.min + 0.5);
  return { inside, outside };
}

test("K's bound is one number everywhere: the codec, the zod schemas, checkpoints, the sampler, the CLI and package.json", () => {
  const welcome = (k: number) => decodeMessage(encodeMessage({ type: 'welcome', committedRound: 0, config: { ...config, k } }));
  assert.equal((welcome(K) as { config: FederationConfig }).config.k, K);
  assert.throws(() => welcome(K + 1), /K = 65537: must be an integer from 1 to 65,536/);

  assert.ok(federationConfigSchema.safeParse({ ...config, k: K }).success);
  assert.ok(!federationConfigSchema.safeParse({ ...config, k: K + 1 }).success);
  const training = {
    data: { path: 'd', heldOutFraction: 0.1, seqLen: 64 },
    steps: 1,
    k: K,
    federationSeed: 0,
    epsilon: 1e-3,
    eta: 1e-4,
    batchSize: 1,
    evalEvery: 0,
    evalExamples: 1,
  };
  assert.ok(startTrainingParamsSchema.safeParse(training).success);
  assert.ok(!startTrainingParamsSchema.safeParse({ ...training, k: K + 1 }).success, 'the trainer refuses K = 65,537 at its door, not deep in the sampler');

  assert.doesNotThrow(() => new SeedSampler(K, 1));
  assert.throws(() => new SeedSampler(K + 1, 1), /K must be an integer from 1 to 65,536/);

  const dir = mkdtempSync(join(tmpdir(), 'fedkseed-bounds-'));
  try {
    const file = join(dir, 'c.json');
    const origin = { baseModel: 'a'.repeat(64), federationSeed: 1, k: K, eta: 1e-4, epsilon: 1e-3 };
    writeFileSync(file, JSON.stringify(makeCheckpoint(origin, new Float64Array(K))));
    assert.equal(loadCheckpoint(file).k, K);
    writeFileSync(file, JSON.stringify({ ...makeCheckpoint(origin, new Float64Array(K)), k: K + 1 }));
    assert.throws(() => loadCheckpoint(file), /invalid at k/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  assert.equal(seedCount(String(K)), K);
  assert.throws(() => seedCount(String(K + 1)), /at most 65,536/);
  const manifest = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as {
    contributes: { configuration: { properties: Record<string, { maximum?: number }> } };
  };
  assert.equal(manifest.contributes.configuration.properties['fedkseed.training.k'].maximum, K);
});

test('every hyperparameter: the CLI parser and the zod schema accept each end of its bound and refuse just beyond it', () => {
  for (const [name, bound] of Object.entries(HYPERPARAMETER_BOUNDS) as [Hyperparameter, Bound][]) {
    const parse = hyperparameterArg(name);
    const schema = hyperparameter(name);
    const { inside, outside } = edges(bound);
    for (const v of inside) {
      assert.equal(parse(String(v)), v, `${name}: the CLI refuses ${v}`);
      assert.ok(schema.safeParse(v).success, `${name}: the schema refuses ${v}`);
    }
    for (const v of outside) {
      assert.throws(() => parse(String(v)), new RegExp(`must be (an integer|a number)`), `${name}: the CLI accepts ${v}`);
      assert.ok(!schema.safeParse(v).success, `${name}: the schema accepts ${v}`);
    }
    assert.throws(() => parse('NaN'));
    assert.throws(() => parse(''));
  }
});

test("the extension's settings carry each hyperparameter's bound as their minimum and maximum", () => {
  const SETTINGS: Record<string, Hyperparameter> = {
    'fedkseed.training.k': 'k',
    'fedkseed.training.batchSize': 'batchSize',
    'fedkseed.training.sequenceLength': 'seqLen',
    'fedkseed.training.epsilon': 'epsilon',
    'fedkseed.training.learningRate': 'eta',
    'fedkseed.training.federationSeed': 'federationSeed',
    'fedkseed.localServer.rounds': 'rounds',
    'fedkseed.localServer.clientsPerRound': 'clientsPerRound',
    'fedkseed.localServer.tau': 'tau',
    'fedkseed.localServer.deadlineSeconds': 'deadlineSeconds',
  };
  const manifest = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as {
    contributes: { configuration: { properties: Record<string, { minimum?: number; exclusiveMinimum?: number; maximum?: number }> } };
  };
  for (const [setting, name] of Object.entries(SETTINGS)) {
    const schema = manifest.contributes.configuration.properties[setting];
    const b: Bound = HYPERPARAMETER_BOUNDS[name];
    assert.ok(schema, `${setting} is not a setting`);
    if (b.exclusiveMin) assert.deepEqual([schema.exclusiveMinimum, schema.minimum], [b.min, undefined], `${setting}: its lower bound`);
    else assert.deepEqual([schema.minimum, schema.exclusiveMinimum], [b.min, undefined], `${setting}: its lower bound`);
    assert.equal(schema.maximum, b.max === Number.MAX_VALUE ? undefined : b.max, `${setting}: its upper bound`);
  }
});

test('a WELCOME whose values are beyond their bounds is refused by the client, naming the field and the bound', () => {
  const cases: [Partial<FederationConfig>, RegExp][] = [
    [{ epsilon: 2 }, /epsilon = 2: must be a number above 0, at most 1/],
    [{ batchSize: 1025 }, /batch size = 1025: must be an integer from 1 to 1,024/],
    [{ tau: HYPERPARAMETER_BOUNDS.tau.max + 1 }, /tau = 1048577/],
  ];
  for (const [change, message] of cases)
    assert.throws(() => decodeMessage(encodeMessage({ type: 'welcome', committedRound: 0, config: { ...config, ...change } })), message);
});
