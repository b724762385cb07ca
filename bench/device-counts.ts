// What a WebGPU ZO step costs the device, counted from the graphs the engine builds (graph-cost.ts), not
// timed: kernel launches and device bytes per parameter, before and after the z kept between passes, and
// the step time they predict on named GPUs (gpu-model.ts). The counts hold on any device; lavapipe runs
// the same graphs.
import { buildDevicePassGraph, buildPerturbationGraph, deviceOnlyOptions } from '../trainer/device/perturbation-graph';
import { forwardCost, graphCost, optimizedGraph, perturbationStepCost, type PerturbationStepCost } from '../trainer/device/graph-cost';
import { forwardCounts, GPUS, predictPart, predictStep, type PartPrediction } from '../trainer/device/gpu-model';
import type { ForwardPrecision } from '../contracts/trainer-payloads';
import { DEVICE_NAMES, rewriteForDevice, type DeviceShape, type SpanLayout } from '../trainer/device/device-graph';
import type { TrainingGraph } from '../trainer/model/rewrite';
import { buildRank1PassGraph } from '../trainer/device/rank1-pass-graph';
import { compactLayout } from '../trainer/zo/rank1-compact';
import type { Generator } from '../protocol';

export interface PerturbationCounts {
  readonly dispatches: number;
  readonly bytesPerParameter: number;
  readonly elementOpsPerParameter: number;
  /** Device memory during the larger pass, in weights (4 bytes a parameter): counted, not measured. */
  readonly peakOverWeights: number | null;
  readonly passes: readonly { readonly role: string; readonly nodes: number; readonly dispatches: number; readonly byOp: Readonly<Record<string, number>> }[];
}

export interface DevicePrediction {
  readonly generator: Generator;
  readonly gpu: string;
  readonly batch: number;
  readonly perturbation: PartPrediction;
  readonly forwards: PartPrediction;
  readonly stepMs: number;
}

export interface DeviceStepCounts {
  readonly parameters: number;
  /**
   * Hashing every seed in every pass (the graphs before the kept z), the engine's passes now (iid), and its
   * rank-1 passes (each seed's compact z hashed and expanded on the device, the last z kept).
   */
  readonly perturbation: {
    readonly hashEveryPass: PerturbationCounts;
    readonly cachedZ: PerturbationCounts;
    readonly rank1: PerturbationCounts;
    /** Rank-1 passes that keep no z (above LEAN_RANK1_ABOVE parameters): each expands its seed. */
    readonly rank1NoKeptZ: PerturbationCounts;
  };
  readonly forward: {
    /** Nodes of the device forward as built, and kernel launches after onnxruntime's optimizations (batch 1). */
    readonly builtNodes: number;
    readonly dispatches: number;
    readonly weightSlices: number;
    readonly weightBytesPerParameter: number;
  };
  /** The same forward with float16 products (trainer/device/float16-products.ts). */
  readonly forwardFloat16: DeviceStepCounts['forward'];
  /** Two forwards predicted on named GPUs at each padded shape, float32 and float16 products. */
  readonly forwardPredictions: readonly { readonly gpu: string; readonly batch: number; readonly float32: PartPrediction; readonly float16: PartPrediction }[];
  /** One step: the engine's two passes and two forwards, under each generator. */
  readonly perStep: Readonly<Record<Generator, { readonly dispatches: number; readonly bytesPerParameter: number }>>;
  readonly predictions: readonly DevicePrediction[];
}

function summarise(c: PerturbationStepCost): PerturbationCounts {
  return {
    dispatches: c.dispatches,
    bytesPerParameter: c.bytesPerParameter,
    elementOpsPerParameter: c.elementOpsPerParameter,
    peakOverWeights: c.peakOverWeights,
    passes: c.passes.map((p) => ({ role: p.role, nodes: p.cost.nodes, dispatches: p.cost.dispatches, byOp: p.cost.byOp })),
  };
}

/** A step's perturbation passes over `layout`'s span, counted from their graphs, each way the engine can run them. */
export function perturbationCounts(layout: SpanLayout): DeviceStepCounts['perturbation'] {
  const n = layout.indexSpan;
  const compact = compactLayout(layout.tensors, null, n);
  return {
    hashEveryPass: summarise(perturbationStepCost(n, 'hash-every-pass', (sources) => buildPerturbationGraph(sources.length, 'arithmetic'))),
    cachedZ: summarise(perturbationStepCost(n, 'cached-z', (sources) => buildDevicePassGraph(sources))),
    rank1: summarise(perturbationStepCost(n, 'cached-z', (sources) => buildRank1PassGraph(compact, sources))),
    rank1NoKeptZ: summarise(perturbationStepCost(n, 'no-kept-z', (sources) => buildRank1PassGraph(compact, sources, false))),
  };
}

/** The counts of a step over `layout`'s span (bytes per parameter: per index of the span), and predictions at each padded shape. */
export async function deviceStepCounts(
  training: TrainingGraph,
  layout: SpanLayout,
  shapes: readonly DeviceShape[],
  parameters: number,
): Promise<DeviceStepCounts> {
  const n = layout.indexSpan;
  const { hashEveryPass, cachedZ, rank1, rank1NoKeptZ } = perturbationCounts(layout);
  const first = shapes[0] ?? { batch: 1, seq: 128 };
  const countForward = async (precision: ForwardPrecision) => {
    const built = rewriteForDevice(training, layout, first, precision);
    const cost = forwardCost(built, DEVICE_NAMES.span);
    const optimized = await optimizedGraph(built, {
      executionProviders: ['webgpu'],
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      ...deviceOnlyOptions('webgpu'),
    });
    const launches = graphCost(optimized, {}).dispatches;
    return {
      cost,
      counts: { builtNodes: cost.cost.nodes, dispatches: launches, weightSlices: cost.weightSlices, weightBytesPerParameter: cost.weightBytes / n },
    };
  };
  const { cost: weights, counts: forward } = await countForward('float32');
  const { cost: halfWeights, counts: forwardFloat16 } = await countForward('float16');
  const { dispatches } = forward;
  const byGenerator: [Generator, PerturbationCounts][] = [
    ['iid', cachedZ],
    ['rank1', rank1],
  ];
  const predictions: DevicePrediction[] = [];
  for (const [generator, c] of byGenerator) {
    const perturbation = { dispatches: c.dispatches, bytes: c.bytesPerParameter * n, operations: c.elementOpsPerParameter * n };
    for (const shape of shapes) {
      const forwards = forwardCounts({ dispatches, weightBytes: weights.weightBytes }, parameters, shape.batch * shape.seq);
      for (const gpu of GPUS) predictions.push({ generator, batch: shape.batch, ...predictStep({ perturbation, forwards }, gpu) });
    }
  }
  const forwardPredictions = shapes.flatMap((shape) =>
    GPUS.map((gpu) => ({
      gpu: gpu.name,
      batch: shape.batch,
      float32: predictPart(forwardCounts({ dispatches, weightBytes: weights.weightBytes }, parameters, shape.batch * shape.seq), gpu),
      float16: predictPart(forwardCounts({ ...halfWeights, dispatches: forwardFloat16.dispatches }, parameters, shape.batch * shape.seq), gpu),
    })),
  );
  const perStep = (c: PerturbationCounts): { dispatches: number; bytesPerParameter: number } => ({
    dispatches: c.dispatches + 2 * dispatches,
    bytesPerParameter: c.bytesPerParameter + (2 * weights.weightBytes) / n,
  });
  return {
    parameters,
    perturbation: { hashEveryPass, cachedZ, rank1, rank1NoKeptZ },
    forward,
    forwardFloat16,
    forwardPredictions,
    perStep: { iid: perStep(cachedZ), rank1: perStep(rank1) },
    predictions,
  };
}
