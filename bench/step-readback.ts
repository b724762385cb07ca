// A device ZO step with its two losses read back in one wait (DeviceModelSession.lossPair) against the
// same step awaiting each loss, side by side on the same weights, seeds and batches, interleaved in
// blocks of steps; also the read-backs each takes per step (BusCounter).
//   node --import tsx bench/step-readback.ts [size=1m] [generator=rank1] [batch=1] [blocks=4]
// On lavapipe (software Vulkan) the device is the CPU, so the host's waits overlap nothing: the figures
// check the code path and say nothing about a GPU, where the device works while the host reads.
import { loadModel } from '../trainer/model/load';
import { DeviceModelSession, DeviceWeights } from '../trainer/device/resident';
import type { TokenBatch } from '../trainer/data/batches';
import type { Generator } from '../protocol';
import { ParameterSet } from '../trainer/zo/parameters';
import { SeedSampler } from '../trainer/zo/seed-sampler';
import { type BatchLoss, ZoTrainer } from '../trainer/zo/zo-trainer';
import { benchCacheDir, cachedModel } from './models';
import { ENGINE_SIZES, type EngineSize } from './engine';
import { median } from './zo-step';

const SEQ = 128;
const STEPS_PER_BLOCK = 4;

export interface StepReadbackResult {
  readonly parameters: number;
  readonly pairedMsPerStep: number;
  readonly awaitedMsPerStep: number;
  readonly pairedReadBacksPerStep: number;
  readonly awaitedReadBacksPerStep: number;
}

function batchOf(batch: number, vocab: number): TokenBatch {
  const n = batch * SEQ;
  const inputIds = BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 7919) % vocab));
  const labels = BigInt64Array.from({ length: n }, (_, i) => ((i + 1) % SEQ === 0 ? -100n : inputIds[i + 1]));
  return { inputIds, attentionMask: new BigInt64Array(n).fill(1n), labels, batch, seq: SEQ };
}

export async function runStepReadback(size: EngineSize = '1m', generator: Generator = 'rank1', batch = 1, blocks = 4): Promise<StepReadbackResult> {
  const model = await loadModel(cachedModel(ENGINE_SIZES[size], benchCacheDir()), { defer: true });
  const params = new ParameterSet(model.weights, {});
  params.setGenerator(generator);
  const weights = await DeviceWeights.create(params);
  const session = new DeviceModelSession(model, weights, { maxSequence: SEQ });
  const awaited: BatchLoss = { lossSum: (b) => session.lossSum(b) };
  const data = batchOf(batch, model.io.vocab ?? 2);
  const seeds = new SeedSampler(4096, 3);
  try {
    const block = async (loss: BatchLoss): Promise<{ ms: number; readBacks: number }> => {
      await weights.sync();
      const before = weights.counter.readBacks;
      const trainer = new ZoTrainer(weights, loss, { federationSeed: 7, k: 4096, epsilon: 1e-3, eta: 1e-6 });
      const t = performance.now();
      await trainer.train({ steps: STEPS_PER_BLOCK, seeds, nextBatch: () => data });
      await weights.sync();
      return { ms: (performance.now() - t) / STEPS_PER_BLOCK, readBacks: (weights.counter.readBacks - before - 1) / STEPS_PER_BLOCK };
    };
    await block(session); // warm-up: sessions created, shaders compiled
    const rows = { paired: [] as number[], awaited: [] as number[], pairedReads: 0, awaitedReads: 0 };
    for (let i = 0; i < blocks; i++) {
      const p = await block(session);
      const a = await block(awaited);
      rows.paired.push(p.ms);
      rows.awaited.push(a.ms);
      rows.pairedReads = p.readBacks;
      rows.awaitedReads = a.readBacks;
    }
    return {
      parameters: params.parameterCount,
      pairedMsPerStep: median(rows.paired),
      awaitedMsPerStep: median(rows.awaited),
      pairedReadBacksPerStep: rows.pairedReads,
      awaitedReadBacksPerStep: rows.awaitedReads,
    };
  } finally {
    await session.release();
    await weights.release();
    params.dispose();
  }
}

if (require.main === module) {
  const [size = '1m', generator = 'rank1', batch = '1', blocks = '4'] = process.argv.slice(2);
  void runStepReadback(size as EngineSize, generator as Generator, Number(batch), Number(blocks)).then((r) => {
    console.log(
      `${size} (${r.parameters.toLocaleString('en-US')} parameters), ${generator}, batch ${batch}: ` +
        `both losses in one read ${r.pairedMsPerStep.toFixed(1)} ms/step (${r.pairedReadBacksPerStep} read-backs a step), ` +
        `each awaited ${r.awaitedMsPerStep.toFixed(1)} ms/step (${r.awaitedReadBacksPerStep}); ratio ${(r.pairedMsPerStep / r.awaitedMsPerStep).toFixed(3)}`,
    );
  });
}
