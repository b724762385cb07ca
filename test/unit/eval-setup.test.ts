// `fedkseed eval --checkpoint` scores what the checkpoint's own held-out loss scored, unless the command
// line says otherwise: the rule that picks which options the checkpoint decides.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { adoptEvaluationSetup } from '../../cli/commands/eval';

const setup = { seqLen: 64, heldOutFraction: 0.2, examples: 16, include: ['**/*.py'] };
const defaults = () => ({ data: '.', seqLen: 128, heldOut: 0.1, maxExamples: 64, include: undefined as string[] | undefined, split: 'held-out' as const });

test("options left at their defaults take the checkpoint's setup, and the note names each one", () => {
  const o = { ...defaults(), given: new Set<string>() };
  const adopted = adoptEvaluationSetup(o, setup);
  assert.deepEqual([o.seqLen, o.heldOut, o.maxExamples, o.include], [64, 0.2, 16, ['**/*.py']]);
  assert.deepEqual(adopted, ['--seq-len 64', '--held-out 0.2', '--max-examples 16', "--include '**/*.py'"]);
});

test('an option given on the command line wins over the checkpoint', () => {
  const o = { ...defaults(), seqLen: 32, given: new Set(['seqLen', 'include']), include: ['**/*.ts'] };
  const adopted = adoptEvaluationSetup(o, setup);
  assert.equal(o.seqLen, 32);
  assert.deepEqual(o.include, ['**/*.ts']);
  assert.deepEqual(adopted, ['--held-out 0.2', '--max-examples 16']);
});

test('--split all keeps every example: the held-out share and count are not taken; a setup equal to the defaults adds no note', () => {
  const all = { ...defaults(), split: 'all' as const, given: new Set<string>() };
  assert.deepEqual(adoptEvaluationSetup(all, { seqLen: 128, heldOutFraction: 0.5, examples: 8 }), []);
  assert.equal(all.heldOut, 0.1);
  const same = { ...defaults(), given: new Set<string>() };
  assert.deepEqual(adoptEvaluationSetup(same, { seqLen: 128, heldOutFraction: 0.1, examples: 64 }), []);
});

test("without --data, the checkpoint's own dataset is scored; a dataset that is not here is refused with the option that fixes it", () => {
  const here = process.cwd();
  const o = { ...defaults(), given: new Set<string>() };
  const adopted = adoptEvaluationSetup(o, { ...setup, data: here });
  assert.equal(o.data, here);
  assert.ok(adopted.includes(`--data ${here}`));

  const given = { ...defaults(), data: '/elsewhere', given: new Set(['data']) };
  adoptEvaluationSetup(given, { ...setup, data: here });
  assert.equal(given.data, '/elsewhere');

  const gone = { ...defaults(), given: new Set<string>() };
  assert.throws(
    () => adoptEvaluationSetup(gone, { ...setup, data: '/no/such/dataset.jsonl' }),
    /measured on \/no\/such\/dataset\.jsonl, which is not here: give --data/,
  );
});
