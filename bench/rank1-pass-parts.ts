// Where a rank-1 device pass spends its time, part by part, on the WebGPU adapter this machine opens: the
// hash of a compact z alone, a pass from the kept z (its Mul and Add), and a pass that hashes and expands its
// seed; the expansion is the last minus the other two. Interleaved, medians of synced runs.
//   node --import tsx bench/rank1-pass-parts.ts [size=1m] [repeats=5]
// On lavapipe (software Vulkan) the figures locate lavapipe's costs and say nothing about a GPU's speed.
import * as ort from 'onnxruntime-node';
import { loadModel } from '../trainer/model/load';
import { keyByteFeeds } from '../trainer/device/arithmetic-hash';
import { buildRank1CompactGraph } from '../trainer/device/rank1-pass-graph';
import { DeviceWeights } from '../trainer/device/resident';
import { seedKey } from '../trainer/zo/generator';
import { ParameterSet } from '../trainer/zo/parameters';
import { benchCacheDir, cachedModel } from './models';
import { ENGINE_SIZES, type EngineSize } from './engine';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export interface Rank1PassParts {
  readonly parameters: number;
  readonly compactValues: number;
  /** Milliseconds per run. */
  readonly hashMs: number;
  readonly keptZPassMs: number;
  readonly hashedPassMs: number;
}

export async function runRank1PassParts(size: EngineSize = '1m', repeats = 5): Promise<Rank1PassParts> {
  const model = await loadModel(cachedModel(ENGINE_SIZES[size], benchCacheDir()), { defer: true });
  const params = new ParameterSet(model.weights, {});
  params.setGenerator('rank1');
  const layout = params.rank1Layout();
  if (layout === null) throw new Error('a rank-1 set has a compact layout');
  const weights = await DeviceWeights.create(params);
  // A host output: each run of the hash alone waits for the device and reads the compact z back.
  const hash = await ort.InferenceSession.create(buildRank1CompactGraph(layout), {
    executionProviders: ['webgpu'],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
  try {
    const timed = async (run: () => Promise<unknown>): Promise<number> => {
      await weights.sync();
      const t = performance.now();
      await run();
      await weights.sync();
      return performance.now() - t;
    };
    const rows = { hash: [] as number[], kept: [] as number[], hashed: [] as number[] };
    let j = 0;
    await weights.perturb(seedKey(7, j), 1e-3); // warm-up: sessions created, the replica uploaded
    for (let r = 0; r < repeats + 1; r++) {
      const hashMs = await timed(() => hash.run(keyByteFeeds(0, seedKey(7, 1000 + r))));
      const keptMs = await timed(() => weights.perturb(seedKey(7, j), -1e-3));
      j++;
      const hashedMs = await timed(() => weights.perturb(seedKey(7, j), 1e-3));
      if (r === 0) continue; // the first round compiles the shaders
      rows.hash.push(hashMs);
      rows.kept.push(keptMs);
      rows.hashed.push(hashedMs);
    }
    return {
      parameters: params.parameterCount,
      compactValues: layout.length,
      hashMs: median(rows.hash),
      keptZPassMs: median(rows.kept),
      hashedPassMs: median(rows.hashed),
    };
  } finally {
    await hash.release();
    await weights.release();
    params.dispose();
  }
}

if (require.main === module) {
  const [size = '1m', repeats = '5'] = process.argv.slice(2);
  void runRank1PassParts(size as EngineSize, Number(repeats)).then((p) => {
    const expansion = p.hashedPassMs - p.hashMs - p.keptZPassMs;
    console.log(
      `${size} (${p.parameters.toLocaleString()} parameters, ${p.compactValues.toLocaleString()} compact values): ` +
        `hash alone ${p.hashMs.toFixed(1)} ms, pass from the kept z ${p.keptZPassMs.toFixed(1)} ms, ` +
        `pass that hashes and expands ${p.hashedPassMs.toFixed(1)} ms (its expansion ≈ ${expansion.toFixed(1)} ms)`,
    );
  });
}
