// The trainer's status reporter: the weights the trainer holds and the job it runs are part of its status,
// sent the moment they change (the extension reads them there, not from its own copy), kept when a job's
// status starts afresh; counters wait for the next interval.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { baseWeights, idleTrainerStatus, trainerStatusSchema, type TrainerStatus, type WeightsState } from '../../contracts/trainer-payloads';
import { StatusReporter } from '../../trainer/host/status-reporter';

const local: WeightsState = { kind: 'local', steps: 20, round: 0, runId: 'r1', restored: false };

function reporter(): { reporter: StatusReporter; sent: TrainerStatus[] } {
  const sent: TrainerStatus[] = [];
  // An interval no test waits for: whatever is sent was sent at once.
  const r = new StatusReporter({ status: (s) => sent.push(s), steps: () => undefined }, 60_000);
  return { reporter: r, sent };
}

test('an idle trainer runs no job and holds no weights; the schema requires both', () => {
  assert.equal(idleTrainerStatus.job, null);
  assert.equal(idleTrainerStatus.weights, null);
  assert.ok(trainerStatusSchema.safeParse(idleTrainerStatus).success);
  const { job: _job, ...withoutJob } = idleTrainerStatus;
  assert.equal(trainerStatusSchema.safeParse(withoutJob).success, false, 'a status without its job is refused');
  const { weights: _weights, ...withoutWeights } = idleTrainerStatus;
  assert.equal(trainerStatusSchema.safeParse(withoutWeights).success, false, 'a status without its weights is refused');
  assert.equal(trainerStatusSchema.safeParse({ ...idleTrainerStatus, job: 'dancing' }).success, false);
});

test('the weights held and the job are sent the moment they change, and only then', () => {
  const { reporter: r, sent } = reporter();
  try {
    r.hold(baseWeights);
    assert.deepEqual(sent.at(-1)?.weights, baseWeights);
    r.running('training');
    assert.equal(sent.at(-1)?.job, 'training');
    assert.equal(sent.length, 2);

    r.hold({ ...baseWeights });
    r.running('training');
    r.update({ step: 3, loss: 2.5 });
    assert.equal(sent.length, 2, 'the same weights, the same job and a new step wait for the interval');

    r.hold(local);
    assert.equal(sent.length, 3);
    assert.deepEqual(sent.at(-1)?.weights, local);
    assert.equal(sent.at(-1)?.step, 3, 'with what was pending');
    r.hold({ ...local, restored: true });
    assert.equal(sent.length, 4, 'reloaded from the checkpoint is a change');

    r.running(null);
    assert.equal(sent.at(-1)?.job, null);
    r.hold(null);
    assert.equal(sent.at(-1)?.weights, null);
    assert.equal(sent.length, 6);
  } finally {
    r.dispose();
  }
});

test("a job's fresh status keeps the weights held, the job and the provider", () => {
  const { reporter: r, sent } = reporter();
  try {
    r.update({ provider: 'cpu' });
    r.hold(local);
    r.running('federation');
    r.update({ step: 40, round: 3 });
    r.reset({ state: 'loading', mode: 'federation', server: 'ws://127.0.0.1:7070' });
    const s = sent.at(-1);
    assert.deepEqual(
      { state: s?.state, step: s?.step, round: s?.round, provider: s?.provider, job: s?.job, weights: s?.weights },
      { state: 'loading', step: 0, round: 0, provider: 'cpu', job: 'federation', weights: local },
    );
    r.reset({ state: 'loading', weights: null });
    assert.equal(sent.at(-1)?.weights, null, 'unless the patch says otherwise (a model being loaded)');
  } finally {
    r.dispose();
  }
});
