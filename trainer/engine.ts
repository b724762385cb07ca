// One place that assembles the engine: model → training graph → session, weights → ParameterSet
// (resident in WASM memory where they fit), and the tokenizer. With WebGPU the weights also live on the
// device (trainer/device/resident.ts): the ParameterSet stays the exact replica on the host, the device
// holds the working weights, and every ZO pass and forward runs there.
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { loadTokenizer, tokenIdsOnly, type TextTokenizer } from './data/tokenizer';
import type { IncrementalDecoder, NextTokenModel } from './model/generate';
import { CachedDecoder, canDecodeWithCache } from './model/decoder';
import { locateModel, type LocatedModel } from '../contracts/node/model-location';
import type { Selection } from './model/trainable';
import type { TokenBatch } from './data/batches';
import { DeviceModelSession, DeviceWeights, deviceForwardPrecision } from './device/resident';
import { createWithProviders, currentProviderEnvironment, type ProviderReport } from './device/providers';
import { loadModel, ModelError, rewriteForTraining, type LoadedModel } from './model';
import { ModelSession, type LossResult } from './device/session';
import { NoProviderError } from './device/providers';
import { bundledModelDir } from './paths';
import type { KernelChoice } from './zo/kernels-select';
import { wasmSimdSupported } from './zo/wasm/load';
import { estimateRuntimeBytes, planMemory, runtimeShape, type MemoryPlan, type Workload } from './zo/memory-plan';
import { ParameterSet, type SumsMode } from './zo/parameters';
import { defaultSpillDir, freeBytesAt } from './zo/replica-file';
import { ENGINE_DEFAULTS, TRAINING_DEFAULTS } from '../contracts/defaults';
import type { PerturbationTarget } from './zo/zo-trainer';
import type { Generator, PerturbationShape } from '../protocol';
import type { ForwardPrecision } from '../contracts/trainer-payloads';

export interface EngineOptions {
  /**
   * An .onnx file, a model folder (plain, Optimum, transformers.js, Hugging Face cache) or an org/name id
   * in the local Hugging Face cache (default: the bundled model); see contracts/model-location.ts.
   */
  readonly model?: string;
  /** Which file of a folder: fp32 (default), fp16, quantized, q4, … */
  readonly variant?: string;
  /** tokenizer.json (default: where the model's layout keeps it; none is needed for pre-tokenised data). */
  readonly tokenizer?: string;
  /** Which parameters to train (globs over weight names; default: every parameter). */
  readonly select?: Selection;
  /** Intra-op threads for onnxruntime (default: all cores). */
  readonly threads?: number;
  /**
   * Execution providers to try in order (default ['cpu']): names, comma lists or 'auto'. 'webgpu' runs
   * the device-resident engine; 'auto' takes it only on a hardware adapter (trainer/device/providers.ts).
   */
  readonly providers?: string[];
  readonly kernel?: KernelChoice;
  /** The WebGPU engine's products: float32 (default) or float16 where the adapter has shader-f16. */
  readonly forwardPrecision?: ForwardPrecision;
  /** Longest sequence the device engine pads to (default: the model's context from config.json or its position table). */
  readonly maxSequence?: number;
  /**
   * Memory budget of the process in bytes (default: 80% of physical memory). It decides the z store and
   * how S is kept (trainer/zo/memory-plan.ts); a model that cannot train within it fails before its
   * weights are loaded, with the figure needed.
   */
  readonly maxMemory?: number;
  /** The batches the budget plans onnxruntime's activations for (default: the training defaults). */
  readonly workload?: Workload;
  /** Fixed choices instead of the plan's (benchmarks and tests). */
  readonly memory?: { readonly sums?: SumsMode; readonly zStore?: boolean | number; readonly base?: 'source' | 'held'; readonly spillDir?: string };
}

/** The forward as the engine runs it: on the host (ModelSession) or on the device (DeviceModelSession). */
export interface TrainingSession {
  lossSum(batch: TokenBatch): Promise<LossResult>;
  /** A ZO step's two losses in one read-back (the device engine; see BatchLoss.lossPair). */
  lossPair?(batch: TokenBatch, between: () => Promise<void>): Promise<readonly [LossResult, LossResult]>;
  lastLogits(inputIds: BigInt64Array, attentionMask: BigInt64Array, batch: number, seq: number): Promise<Float32Array>;
  readonly executionProvider: string;
  readonly providerReport: ProviderReport;
  release(): Promise<void>;
}

/** The working weights local training perturbs: the ParameterSet itself, or the device's copy. */
export interface LocalWeights extends PerturbationTarget {
  /** Back to the replica (the ParameterSet's w0 and applied coefficients), dropping local steps. */
  resetToBase(): void;
}

export interface Engine {
  readonly model: LoadedModel;
  /** The exact replica (and, on the host engine, the working weights too). */
  readonly params: ParameterSet;
  readonly session: TrainingSession;
  /** What ZO steps perturb: `params` on the host engine, the device weights on WebGPU. */
  readonly weights: LocalWeights;
  /** The device weights (WebGPU), else null. */
  readonly device: DeviceWeights | null;
  /** The model's tokenizer; token ids only (tokenIdsOnly) when the model came without one. */
  readonly tokenizer: TextTokenizer;
  readonly modelPath: string;
  /** What `model` resolved to: layout, file, variant, tokenizer and config files. */
  readonly located: LocatedModel;
  /** Greedy decoding: over the KV cache when the model has one (host engine), else whole-sequence forwards. */
  readonly generator: NextTokenModel;
  /** What the memory budget chose (the z store, how S is kept) and the bytes it planned. */
  readonly memoryPlan: MemoryPlan;
  /** The model's context length (positions), when its config or position table says. */
  readonly context: number | undefined;
  /** The forwards' products as they run, and why not as asked where they are not. */
  readonly forwardPrecision: { readonly used: ForwardPrecision; readonly note: string | null };
  close(): Promise<void>;
}

/** The model's context length: config.json (default: beside it), else a learned position table's first dimension. */
export function modelContext(modelPath: string, model: LoadedModel, config = join(dirname(modelPath), 'config.json')): number | undefined {
  if (existsSync(config)) {
    try {
      const c = JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;
      for (const key of ['n_positions', 'max_position_embeddings', 'n_ctx']) if (typeof c[key] === 'number') return c[key] as number;
    } catch {
      // not a Hugging Face config
    }
  }
  const table = model.weights.find((w) => /(^|\.)wpe\.weight$|position_embeddings?\.weight$/.test(w.name) && w.dims.length === 2);
  return table?.dims[0];
}

type Opened =
  { kind: 'host'; session: ModelSession } | { kind: 'device'; session: DeviceModelSession; weights: DeviceWeights; precision: Engine['forwardPrecision'] };

export async function openEngine(options: EngineOptions = {}): Promise<Engine> {
  const located = locateModel(options.model ?? bundledModelDir(), { tokenizer: options.tokenizer, variant: options.variant });
  // Deferred: weights stored as raw floats in the files are read straight into the ParameterSet's memory
  // (and w0 back from there when needed), so no master copy is allocated here.
  const model = await loadModel(located.model, { select: options.select, defer: true });
  const context = modelContext(located.model, model, located.config ?? undefined);
  // Checked before anything is sized by it: a longer window would fail inside onnxruntime.
  if (options.workload && context !== undefined && options.workload.seq > context) {
    throw new Error(`a sequence length of ${options.workload.seq} exceeds the model's ${context} positions; choose at most ${context}`);
  }
  const memoryPlan = engineMemoryPlan(model, options);
  const tokenizer = located.tokenizer ? loadTokenizer(located.tokenizer) : tokenIdsOnly(model.vocabSize ?? Number.MAX_SAFE_INTEGER, located.model);
  const paths = { model: located.model, tokenizer: located.tokenizer };
  const request = options.providers ?? ['cpu'];
  const requestedPrecision = options.forwardPrecision ?? ENGINE_DEFAULTS.forwardPrecision;
  const threads = options.threads ?? availableParallelism();
  // Large models split each perturbation pass over two threads (the session's cores idle meanwhile).
  const params = new ParameterSet(model.weights, {
    kernel: options.kernel ?? 'auto',
    parallelPasses: 'auto',
    sums: options.memory?.sums ?? memoryPlan.sums,
    zStore: options.memory?.zStore ?? (memoryPlan.zStore >= 1 ? undefined : memoryPlan.zStore),
    base: options.memory?.base,
    spillDir: options.memory?.spillDir,
  });
  // The master copies now live in the ParameterSet; drop the loader's arrays.
  for (const w of model.weights) w.data = new Float32Array(0);
  const graph = rewriteForTraining(model);
  let opened: Opened;
  let report: ProviderReport;
  try {
    ({ value: opened, report } = await createWithProviders<Opened>(
      request,
      async (ep) => {
        if (ep !== 'webgpu') return { kind: 'host', session: await ModelSession.create(graph, { intraOpNumThreads: threads, executionProviders: [ep] }) };
        const weights = await DeviceWeights.create(params);
        const precision = await deviceForwardPrecision(requestedPrecision);
        const session = new DeviceModelSession(graph, weights, {
          maxSequence: options.maxSequence ?? modelContext(paths.model, model, located.config ?? undefined),
          forwardPrecision: precision.used,
        });
        try {
          // Creating one forward session checks that every node of the model runs on the device.
          await session.prepare(1, 16);
        } catch (e) {
          await session.release();
          await weights.release();
          throw e;
        }
        return { kind: 'device', session, weights, precision };
      },
      currentProviderEnvironment(),
    ));
  } catch (e) {
    params.dispose();
    if (e instanceof NoProviderError) throw new ModelError(graph.file, e.message);
    throw e;
  }
  opened.session.adoptReport(report);
  const { session } = opened;
  const device = opened.kind === 'device' ? opened.weights : null;
  // bindTo, not bindWeights: a split pass hands back new arrays and the session must follow them.
  if (opened.kind === 'host') params.bindTo(opened.session);
  // The KV-cache decoder is made at the first generation: training never needs it. On the device engine
  // the working weights live on the device, so generation stays with its session.
  let decoder: Promise<CachedDecoder> | null = null;
  const cached = (): Promise<CachedDecoder> =>
    (decoder ??= CachedDecoder.create(model, { intraOpNumThreads: threads, executionProvider: session.executionProvider }).then((d) => {
      params.bindTo(d);
      return d;
    }));
  const incremental: IncrementalDecoder | null =
    opened.kind === 'host' && canDecodeWithCache(model)
      ? {
          prefill: async (ids, rows, seq) => (await cached()).prefill(ids, rows, seq),
          step: async (state, keep, tokens) => (await cached()).step(state, keep, tokens),
        }
      : null;
  const generator: NextTokenModel = { lastLogits: (ids, mask, batch, seq) => session.lastLogits(ids, mask, batch, seq), decoder: incremental };
  const close = async (): Promise<void> => {
    params.dispose();
    await session.release();
    await device?.release();
    if (decoder) await (await decoder).release();
  };
  if (tokenizer.vocabSize > (model.vocabSize ?? Infinity)) {
    await close();
    throw new Error(`tokenizer ${paths.tokenizer} has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${model.vocabSize}`);
  }
  const forwardPrecision =
    opened.kind === 'device'
      ? opened.precision
      : {
          used: 'float32' as const,
          note:
            requestedPrecision === 'float16'
              ? `float16 forwards run on the WebGPU engine only; this one runs on ${session.executionProvider} in float32`
              : null,
        };
  return {
    model,
    params,
    session,
    weights: device ?? params,
    device,
    tokenizer,
    modelPath: paths.model,
    located,
    generator,
    memoryPlan,
    context,
    forwardPrecision,
    close,
  };
}

/** The memory plan for a loaded (deferred) model: throws MemoryBudgetError when it cannot train within the budget. */
export function engineMemoryPlan(model: LoadedModel, options: Pick<EngineOptions, 'maxMemory' | 'workload' | 'kernel' | 'memory'>): MemoryPlan {
  const align8 = (n: number): number => Math.ceil(n / 8) * 8;
  const size = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);
  const workload = options.workload ?? { batch: TRAINING_DEFAULTS.batchSize, seq: TRAINING_DEFAULTS.seqLen };
  return planMemory({
    indexSpan: model.weights.reduce((a, w) => a + align8(size(w.dims)), 0),
    heldBase: model.weights.reduce((a, w) => a + (w.source ? 0 : size(w.dims)), 0),
    runtimeBytes: estimateRuntimeBytes(runtimeShape(model.weights, model.vocabSize), workload),
    budgetBytes: options.maxMemory ?? null,
    totalMemory: totalmem(),
    storeWanted: options.kernel !== 'js' && wasmSimdSupported(),
    scratchFreeBytes: freeBytesAt(options.memory?.spillDir ?? defaultSpillDir()),
  });
}

/**
 * Makes the ParameterSet's working weights those the engine trained (on WebGPU they are the device's),
 * before exporting them. The replica (w0 and the applied coefficients) is unchanged; resetToBase returns
 * to it. A no-op on the host engine.
 */
export async function pullWorkingWeights(engine: Engine): Promise<void> {
  if (engine.device) engine.params.restore(await engine.device.read());
}

/** How a run or a federation perturbs: its generator and shape, applied to an engine in one place. */
export interface Perturbation {
  readonly shape?: PerturbationShape;
  readonly generator?: Generator;
}

/** Sets the engine's replica to the perturbation's generator and shape (absent: 'iid' and 'isotropic'). */
export function followPerturbation(engine: Pick<Engine, 'params'>, p: Perturbation): void {
  engine.params.setGenerator(p.generator ?? 'iid');
  engine.params.setShape(p.shape ?? 'isotropic');
}
