// How many distinct forward shapes (one WebGPU session each) and how much padding the device engine's
// shape buckets give on a real corpus: the training sampler's batches (and the held-out batches) of a
// dataset, padded by each bucketing. Counts, not timings: they hold on any device.
//
//   node --import tsx bench/device-shapes.ts [dataset path ...] [--batch 4] [--seq 128] [--steps 2000]
//
// Default corpora: this repository's trainer/ sources (text windows, the bundled code model's task) and
// the Dolly instruction fixture (variable-length examples).
import { resolve } from 'node:path';
import { bucketLength, nextPow2 } from '../trainer/device/resident';
import { BatchSampler, evalBatches } from '../trainer/data/batches';
import { loadDataset } from '../trainer/data/dataset';
import { loadTokenizer } from '../trainer/data/tokenizer';

type Bucketing = { readonly name: string; readonly batch: (n: number) => number; readonly seq: (n: number) => number };

const SCHEMES: readonly Bucketing[] = [
  { name: 'powers of two (before)', batch: nextPow2, seq: (n) => nextPow2(Math.max(n, 16)) },
  { name: 'half-octave, multiples of 8 (now)', batch: (n) => bucketLength(n, 1), seq: (n) => bucketLength(n, 16) },
  { name: 'multiples of 8', batch: (n) => n, seq: (n) => Math.max(16, Math.ceil(n / 8) * 8) },
];

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (name: string, fallback: number): number => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args.splice(i, 2)[1]) : fallback;
  };
  const batchSize = flag('batch', 4);
  const seqLen = flag('seq', 128);
  const steps = flag('steps', 2000);
  const paths = args.length > 0 ? args : [resolve('trainer'), resolve('test/fixtures/data/dolly.jsonl')];
  const tokenizer = loadTokenizer(resolve('models/tiny-code-lm/tokenizer.json'));
  for (const path of paths) {
    const data = await loadDataset(path, { tokenizer, seqLen });
    const shapes: [number, number][] = [];
    const sampler = new BatchSampler(data.train, { batchSize, seqLen, padId: 0, seed: 1 });
    for (let i = 0; i < steps; i++) {
      const b = sampler.next();
      shapes.push([b.batch, b.seq]);
    }
    for (const b of evalBatches(data.heldOut, { batchSize, seqLen, padId: 0 })) shapes.push([b.batch, b.seq]);
    const real = shapes.reduce((a, [b, t]) => a + b * t, 0);
    console.log(
      `${path}: ${data.train.length} training / ${data.heldOut.length} held-out examples, batch ${batchSize}, seq ≤ ${seqLen}, ${shapes.length} batches, ${new Set(shapes.map(([b, t]) => `${b}x${t}`)).size} distinct unpadded shapes`,
    );
    console.log('| bucketing | distinct shapes (sessions) | padded tokens ÷ real tokens | worst batch |');
    console.log('|---|---|---|---|');
    for (const s of SCHEMES) {
      const padded = shapes.map(([b, t]) => [s.batch(b), Math.min(Math.max(s.seq(t), t), Math.max(seqLen, t))] as const);
      const distinct = new Set(padded.map(([b, t]) => `${b}x${t}`)).size;
      const total = padded.reduce((a, [b, t]) => a + b * t, 0);
      const worst = Math.max(...padded.map(([b, t], i) => (b * t) / (shapes[i][0] * shapes[i][1])));
      console.log(`| ${s.name} | ${distinct} | ${(total / real).toFixed(3)} | ${worst.toFixed(2)}× |`);
    }
  }
}

void main();
