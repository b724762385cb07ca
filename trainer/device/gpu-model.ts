// A predicted ZO step time on a named GPU, from counts (graph-cost.ts) and the GPU's public peak figures:
// each part takes the longer of its bytes over the memory bandwidth and its operations over the FP32
// rate (the FP16 one for float16 forwards' products), plus a fixed cost per kernel launch. Peaks are
// never reached, so the prediction is a lower bound on the step; its use is to compare graph forms and to
// say which term a part is bound by. The figures measured on a software adapter (lavapipe) say nothing
// about any of this.

export interface GpuSpec {
  readonly name: string;
  /** Peak memory bandwidth, 10⁹ bytes per second. */
  readonly bandwidthGBs: number;
  /** Peak FP32 rate (non-tensor-core), 10¹² operations per second. */
  readonly fp32Tflops: number;
  /**
   * Peak FP16 rate of the shader cores (non-tensor-core: WebGPU's shader-f16 arithmetic), 10¹² operations
   * per second; float16 forwards' products run at it.
   */
  readonly fp16Tflops: number;
  /** Where the figures come from. */
  readonly source: string;
}

/** Public spec figures (vendor datasheets). */
export const GPUS: readonly GpuSpec[] = [
  {
    name: 'H100 SXM',
    bandwidthGBs: 3350,
    fp32Tflops: 67,
    fp16Tflops: 134,
    source:
      'NVIDIA H100 Tensor Core GPU datasheet: H100 SXM, 3.35 TB/s HBM3, FP32 67 TFLOPS; NVIDIA H100 architecture whitepaper: FP16 (non-Tensor) 133.8 TFLOPS',
  },
  {
    name: 'A100',
    bandwidthGBs: 2039,
    fp32Tflops: 19.5,
    fp16Tflops: 78,
    source: 'NVIDIA A100 datasheet: A100 80GB SXM, 2,039 GB/s HBM2e, FP32 19.5 TFLOPS; NVIDIA A100 architecture whitepaper: FP16 (non-Tensor) 78 TFLOPS',
  },
  {
    name: 'RTX 4090',
    bandwidthGBs: 1008,
    fp32Tflops: 82.6,
    fp16Tflops: 82.6,
    source: 'NVIDIA Ada Lovelace architecture whitepaper: GeForce RTX 4090, 1,008 GB/s GDDR6X, 82.6 TFLOPS FP32, FP16 (non-Tensor) 82.6 TFLOPS',
  },
  {
    name: 'RTX 4070 Laptop',
    bandwidthGBs: 256,
    fp32Tflops: 20,
    fp16Tflops: 20,
    source:
      "NVIDIA GeForce RTX 4070 Laptop GPU specifications: 4,608 CUDA cores at up to 2,175 MHz (2 × 4608 × 2.175 GHz ≈ 20 TFLOPS, at its highest power), 128-bit GDDR6 at 16 Gbps = 256 GB/s; FP16 (non-Tensor) at the FP32 rate, as Ada's whitepaper gives for the RTX 4090",
  },
  {
    name: 'Apple M2',
    bandwidthGBs: 100,
    fp32Tflops: 3.6,
    fp16Tflops: 3.6,
    source: 'Apple M2 announcement (June 2022): 100 GB/s unified memory bandwidth, 10-core GPU at 3.6 TFLOPS; no FP16 figure published, taken as the FP32 rate',
  },
];

export function gpuByName(name: string): GpuSpec {
  const gpu = GPUS.find((g) => g.name.toLowerCase() === name.toLowerCase());
  if (!gpu) throw new RangeError(`unknown GPU '${name}': one of ${GPUS.map((g) => g.name).join(', ')}`);
  return gpu;
}

/** What one part of a step costs a device. */
export interface PartCounts {
  /** Kernel launches. */
  readonly dispatches: number;
  /** Bytes read and written in device memory. */
  readonly bytes: number;
  /** Arithmetic operations (FP32 or 32-bit integer, each counted as one FP32 operation). */
  readonly operations: number;
  /** Float16 operations (float16 forwards' products): they run at the FP16 rate. */
  readonly float16Operations?: number;
}

export interface StepCounts {
  /** The passes of one steady-state step (fused restore/update + next seed, then −2εz). */
  readonly perturbation: PartCounts;
  /** Both forwards of the step. */
  readonly forwards: PartCounts;
}

export interface PartPrediction {
  readonly ms: number;
  readonly memoryMs: number;
  readonly computeMs: number;
  readonly launchMs: number;
  readonly bound: 'memory' | 'compute' | 'launches';
}

export interface StepPrediction {
  readonly gpu: string;
  readonly perturbation: PartPrediction;
  readonly forwards: PartPrediction;
  readonly stepMs: number;
}

export interface PredictionOptions {
  /**
   * Host-side cost of one kernel launch, in µs. Not a datasheet figure: a few µs per dispatch is typical
   * of Dawn/WebGPU on a desktop GPU; measure it on the GPU before trusting the launch term.
   */
  readonly launchUs?: number;
}

export const DEFAULT_LAUNCH_US = 5;

export function predictPart(part: PartCounts, gpu: GpuSpec, options: PredictionOptions = {}): PartPrediction {
  for (const [what, v] of [
    ['dispatches', part.dispatches],
    ['bytes', part.bytes],
    ['operations', part.operations],
    ['float16 operations', part.float16Operations ?? 0],
  ] as const) {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`${what} must be a finite count ≥ 0, got ${v}`);
  }
  const memoryMs = (part.bytes / (gpu.bandwidthGBs * 1e9)) * 1e3;
  const computeMs = (part.operations / (gpu.fp32Tflops * 1e12) + (part.float16Operations ?? 0) / (gpu.fp16Tflops * 1e12)) * 1e3;
  const launchMs = (part.dispatches * (options.launchUs ?? DEFAULT_LAUNCH_US)) / 1e3;
  const device = Math.max(memoryMs, computeMs);
  const bound = launchMs > device ? 'launches' : memoryMs >= computeMs ? 'memory' : 'compute';
  return { ms: device + launchMs, memoryMs, computeMs, launchMs, bound };
}

/** The step on `gpu`: the perturbation passes and the two forwards, each predicted on its own. */
export function predictStep(counts: StepCounts, gpu: GpuSpec, options: PredictionOptions = {}): StepPrediction {
  const perturbation = predictPart(counts.perturbation, gpu, options);
  const forwards = predictPart(counts.forwards, gpu, options);
  return { gpu: gpu.name, perturbation, forwards, stepMs: perturbation.ms + forwards.ms };
}

/**
 * The two forwards' counts from a forward graph's: its dispatches and weight bytes per run, and
 * 2·parameters multiply-adds per token (the matrix products; attention's seq² term and the activations'
 * traffic are left out, small beside the weights' at short sequences).
 */
export function forwardCounts(
  perForward: { readonly dispatches: number; readonly weightBytes: number; readonly float16Parameters?: number },
  parameters: number,
  tokens: number,
): PartCounts {
  const half = perForward.float16Parameters ?? 0;
  return {
    dispatches: 2 * perForward.dispatches,
    bytes: 2 * perForward.weightBytes,
    operations: 2 * 2 * (parameters - half) * tokens,
    float16Operations: 2 * 2 * half * tokens,
  };
}
