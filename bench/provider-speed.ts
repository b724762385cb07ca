// The measurement 'auto' reads to put CUDA before WebGPU (trainer/device/auto-choice.ts): a few ZO steps
// of the same model and batch on each provider, median step time, recorded for this WebGPU adapter in
// the user's cache folder (provider-speed.json). Run once on a machine with both a CUDA build and a GPU
// WebGPU adapter:
//
//   node --import tsx bench/provider-speed.ts [model] [batch] [seq] [steps]
//
// It prints both step times side by side with their ratio; it records nothing when either provider
// cannot open, or when WebGPU opened a software adapter.
import { openEngine, type Engine } from '../trainer/engine';
import { observeOpenedAdapter, providerSpeedFile, recordProviderSpeed, type ProviderSpeed } from '../trainer/device/auto-choice';
import { currentProviderEnvironment, describeReport, webgpuAdapterChoice } from '../trainer/device/providers';
import { SeedSampler } from '../trainer/zo/seed-sampler';
import { ZoTrainer } from '../trainer/zo/zo-trainer';
import type { TokenBatch } from '../trainer/data/batches';
import { median } from './zo-step';
import { errorMessage } from '../protocol/errors';

function batchOf(batch: number, seq: number, vocab: number): TokenBatch {
  const n = batch * seq;
  const inputIds = new BigInt64Array(n);
  for (let i = 0; i < n; i++) inputIds[i] = BigInt((i * 7919) % vocab);
  const labels = new BigInt64Array(n);
  for (let i = 0; i < n; i++) labels[i] = (i + 1) % seq === 0 ? -100n : inputIds[i + 1];
  return { inputIds, attentionMask: new BigInt64Array(n).fill(1n), labels, batch, seq };
}

/** Median wall time of a ZO step after one warm-up step (shader compilation, session creation). */
async function stepMs(engine: Engine, batch: TokenBatch, steps: number): Promise<number> {
  const trainer = new ZoTrainer(engine.weights, engine.session, { federationSeed: 7, k: 4096, epsilon: 1e-3, eta: 1e-6 });
  const marks: number[] = [];
  await trainer.train({ steps: steps + 1, seeds: new SeedSampler(4096, 3), nextBatch: () => batch, onStep: () => marks.push(performance.now()) });
  return median(marks.slice(1).map((t, i) => t - marks[i]));
}

export async function measureProviderSpeed(
  options: { model?: string; batch?: number; seq?: number; steps?: number; log?: (line: string) => void } = {},
): Promise<ProviderSpeed | null> {
  const log = options.log ?? console.log;
  const { batch = 4, seq = 64, steps = 5 } = options;
  const adapter = webgpuAdapterChoice(currentProviderEnvironment())?.chosen ?? null;
  if (!adapter) {
    log('no WebGPU adapter could be named here: nothing to record');
    return null;
  }
  const opened = await observeOpenedAdapter().catch((e: unknown) => ({ readable: false as const, note: errorMessage(e) }));
  if (opened.readable && opened.software) {
    log(`WebGPU opened a software adapter (${opened.evidence}): nothing to record`);
    return null;
  }
  const times: Partial<Record<'cuda' | 'webgpu', number>> = {};
  let workload = '';
  for (const provider of ['cuda', 'webgpu'] as const) {
    let engine: Engine;
    try {
      engine = await openEngine({ model: options.model, providers: [provider], workload: { batch, seq } });
    } catch (e) {
      log(`${provider}: cannot open (${errorMessage(e).split('\n')[0]}): nothing to record`);
      return null;
    }
    try {
      workload = `${engine.params.parameterCount.toLocaleString()} parameters, batch ${batch} × ${seq}`;
      times[provider] = await stepMs(engine, batchOf(batch, seq, engine.model.vocabSize ?? 2), steps);
      log(`${provider}: ${describeReport(engine.session.providerReport)}`);
    } finally {
      await engine.close();
    }
  }
  const cuda = times.cuda ?? NaN;
  const webgpu = times.webgpu ?? NaN;
  log(`ZO step (${workload}, median of ${steps}): cuda ${cuda.toFixed(2)} ms | webgpu ${webgpu.toFixed(2)} ms | cuda/webgpu ${(cuda / webgpu).toFixed(3)}`);
  const speed: ProviderSpeed = { adapter: adapter.name, cudaStepMs: cuda, webgpuStepMs: webgpu, steps, workload, measuredAt: new Date().toISOString() };
  recordProviderSpeed(speed);
  log(`recorded in ${providerSpeedFile()}: auto now takes ${cuda < webgpu ? 'cuda' : 'webgpu'} on ${adapter.name}`);
  return speed;
}

if (process.argv[1]?.endsWith('provider-speed.ts')) {
  const [model, batch, seq, steps] = process.argv.slice(2);
  const num = (s: string | undefined): number | undefined => (s === undefined ? undefined : Number(s));
  void measureProviderSpeed({ model: model && model !== '-' ? model : undefined, batch: num(batch), seq: num(seq), steps: num(steps) });
}
