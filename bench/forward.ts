// Median time of the loss forward pass (the unit of a ZO step, which costs two of them) at batch 1 and
// batch 8, for a model given as a loaded model or a training graph.
import { nextTokenLabels } from '../trainer/model/labels';
import type { FloatWeight, LoadedModel } from '../trainer/model/load';
import { rewriteForTraining, type TrainingGraph } from '../trainer/model/rewrite';
import { ModelSession, type ModelSessionOptions } from '../trainer/model/session';

export interface ForwardBenchOptions extends ModelSessionOptions {
  seq?: number;
  batches?: number[];
  /** Timed runs per batch size (after one warm-up run); default 5. */
  repeats?: number;
}

export interface ForwardTiming {
  batch: number;
  seq: number;
  medianMs: number;
  runs: number;
  executionProvider: string;
}

export async function measureForward(model: LoadedModel, options: ForwardBenchOptions = {}): Promise<ForwardTiming[]> {
  const graph: TrainingGraph = rewriteForTraining(model);
  const session = await ModelSession.create(graph, options);
  session.bindWeights(new Map(model.weights.map((w: FloatWeight) => [w.name, w.data])));
  const seq = options.seq ?? 128;
  const vocab = model.io.vocab ?? 2;
  const results: ForwardTiming[] = [];
  try {
    for (const batch of options.batches ?? [1, 8]) {
      const inputIds = new BigInt64Array(batch * seq);
      for (let i = 0; i < inputIds.length; i++) inputIds[i] = BigInt((i * 7919) % vocab);
      const attentionMask = new BigInt64Array(batch * seq).fill(1n);
      const labels = nextTokenLabels(inputIds, attentionMask, batch, seq);
      const run = (): Promise<unknown> => session.lossSum({ inputIds, attentionMask, labels, batch, seq });
      await run();
      const times: number[] = [];
      for (let r = 0; r < (options.repeats ?? 5); r++) {
        const start = process.hrtime.bigint();
        await run();
        times.push(Number(process.hrtime.bigint() - start) / 1e6);
      }
      times.sort((a, b) => a - b);
      results.push({ batch, seq, medianMs: times[Math.floor(times.length / 2)], runs: times.length, executionProvider: session.executionProvider });
    }
  } finally {
    await session.release();
  }
  return results;
}
