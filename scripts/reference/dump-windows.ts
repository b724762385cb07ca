// Writes the token batches `fedkseed train` would train on (same reader, split, sampler and seeds) and the
// held-out windows it evaluates on, so a torch reference (train_reference.py) sees exactly the same data.
//   node --import tsx scripts/reference/dump-windows.ts --data D --steps N --out windows.json
//        [--batch-size 4] [--seq-len 128] [--seed 42] [--held-out 0.1] [--eval-examples 256]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { TRAINING_DEFAULTS } from '../../contracts/defaults';
import { BatchSampler, evalBatches } from '../../trainer/data/batches';
import { loadDataset } from '../../trainer/data/dataset';
import { deriveSeed } from '../../trainer/data/rng';
import { loadTokenizer } from '../../trainer/data/tokenizer';
import { bundledModelDir } from '../../trainer/paths';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    out: { type: 'string' },
    steps: { type: 'string', default: '1000' },
    'batch-size': { type: 'string', default: String(TRAINING_DEFAULTS.batchSize) },
    'seq-len': { type: 'string', default: String(TRAINING_DEFAULTS.seqLen) },
    seed: { type: 'string', default: String(TRAINING_DEFAULTS.federationSeed) },
    'held-out': { type: 'string', default: String(TRAINING_DEFAULTS.heldOutFraction) },
    'eval-examples': { type: 'string', default: String(TRAINING_DEFAULTS.evalExamples) },
    tokenizer: { type: 'string', default: `${bundledModelDir()}/tokenizer.json` },
  },
});
const dataPath = values.data ?? '';
const out = values.out ?? '';
if (!dataPath || !out) throw new Error('usage: dump-windows.ts --data D --out windows.json [--steps N]');
const batchSize = Number(values['batch-size']);
const seqLen = Number(values['seq-len']);
const seed = Number(values.seed);
const tokenizer = loadTokenizer(values.tokenizer as string);
async function main(): Promise<void> {
  const data = await loadDataset(dataPath, { tokenizer, seqLen, heldOutFraction: Number(values['held-out']) });
  const sampler = new BatchSampler(data.train, { batchSize, seqLen, padId: tokenizer.padId, seed: deriveSeed(seed, 'batches') });
  const rows = (b: { inputIds: BigInt64Array; attentionMask: BigInt64Array; labels: BigInt64Array; batch: number; seq: number }) => ({
    ids: Array.from(b.inputIds, Number),
    mask: Array.from(b.attentionMask, Number),
    labels: Array.from(b.labels, Number),
    batch: b.batch,
    seq: b.seq,
  });
  const train = Array.from({ length: Number(values.steps) }, () => rows(sampler.next()));
  const held = data.heldOut.slice(0, Number(values['eval-examples']));
  const heldOut = [...evalBatches(held, { batchSize, seqLen, padId: tokenizer.padId })].map(rows);
  writeFileSync(
    out,
    JSON.stringify({ data: dataPath, batchSize, seqLen, seed, trainExamples: data.train.length, heldOutExamples: data.heldOut.length, train, heldOut }),
  );
  console.log(`${train.length} batches, ${heldOut.length} held-out batches (${held.length} of ${data.heldOut.length} held-out examples) → ${out}`);
}

void main();
