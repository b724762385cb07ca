// The product's defaults, once: the CLI's options and the extension's settings take their values from
// here (package.json's `contributes.configuration` defaults must equal SETTING_DEFAULTS, which
// test/unit/defaults.test.ts checks). Where the CLI and the extension differ, the reason stands beside
// the value. Pure data: importable by trainer/, cli/ and extension/ alike.

/** The zeroth-order step and a local training run (`fedkseed train`, the extension's Start Training). */
export const TRAINING_DEFAULTS = {
  /** Examples per ZO step: FedKSeed uses small batches. */
  batchSize: 4,
  /** Tokens per example window. */
  seqLen: 128,
  /** Number of shared candidate seeds K. */
  k: 4096,
  /** Seed F of the generator: which K perturbation directions exist. */
  federationSeed: 42,
  /** Perturbation scale ε. */
  epsilon: 1e-3,
  /**
   * How z is scaled tensor by tensor (trainer/zo/shape.ts): 'tensor-rms' learns faster than the paper's
   * 'isotropic' at the same steps and bytes (docs/results.md, "Learning faster").
   */
  shape: 'tensor-rms',
  /**
   * How z is generated (trainer/zo/rank1.ts): 'iid', every parameter hashed, the paper's. 'rank1' learns as
   * well (docs/results.md) and applies a round in a fraction of the time at scale; it stays opt-in while it
   * is new (a federation's choice reaches every client in WELCOME).
   */
  generator: 'iid',
  /** Learning rate η of local training (and of a one-client federation, which averages nothing). */
  eta: 5e-5,
  /**
   * Which weights a local run leaves for export, evaluation and completions: 'best', the evaluated point
   * with the lowest held-out loss (the start counts), or 'last', the last step's. Both checkpoints are kept.
   */
  keep: 'best',
  /** ZO steps of a local run. */
  steps: 200,
  /** Held-out evaluation every this many steps (0: before and after only). */
  evalEvery: 50,
  /** Held-out examples per evaluation (the first n of the held-out split; `fedkseed eval` scores the same). */
  evalExamples: 64,
  /** Share of the data held out for evaluation. */
  heldOutFraction: 0.1,
} as const;

export type ExecutionProviderDefault = 'auto' | 'cpu';

/** How the model runs. */
export const ENGINE_DEFAULTS = {
  /**
   * The extension runs one trainer for its window and takes the best provider there is ('auto': CUDA, a
   * hardware WebGPU adapter, else the CPU). The CLI's processes come many to a machine (`simulate` starts
   * a process per client; benchmarks and scripts run several side by side) and would all land on the one
   * GPU, so it stays on the CPU unless `--provider auto` (or a list) asks otherwise.
   */
  provider: { extension: 'auto', cli: 'cpu' } satisfies Record<string, ExecutionProviderDefault>,
  /** onnxruntime intra-op threads; 0: all cores. */
  threads: 0,
  /** Perturbation kernel: WASM SIMD where the runtime validates it, else JS. */
  kernel: 'auto',
  /** Memory budget of a training process ('12G', …); empty: 80% of physical memory (trainer/zo/memory-plan.ts). */
  maxMemory: '',
  /**
   * The WebGPU engine's products in float32: float16 forwards measure each loss with half-precision
   * rounding (docs/gpu.md measures what that does to g), so they are asked for, not assumed.
   */
  forwardPrecision: 'float32',
} as const;

/** What every federation shares, wherever its server runs. */
const FEDERATION_COMMON = {
  /** The server's port; the extension's default server URL points at it. */
  port: 7070,
  sampling: 'pro',
  weighting: 'examples',
  /** The perturbation's shape: the federation decides it and sends it in WELCOME. */
  shape: TRAINING_DEFAULTS.shape,
  /** How z is generated: the federation decides it and sends it in WELCOME. */
  generator: TRAINING_DEFAULTS.generator,
  /** Seconds a sampled client has to upload its round. */
  deadlineSeconds: 600,
} as const;

/** A federation across machines (`fedkseed server`). */
export const FEDERATION_DEFAULTS = {
  ...FEDERATION_COMMON,
  /**
   * η of a federation of several clients: a round's update is their average, with less noise than τ local
   * steps, so it bears a larger rate than local training (on the bundled model 1e-4 lowers the held-out
   * loss almost every round, 3e-4 diverges: docs/simulate.md, "Defaults and why").
   */
  eta: 1e-4,
  /** τ = 200 local steps per round, the paper's setting (a Pro round at K = 4096 then costs under 9 KB). */
  tau: 200,
  rounds: 40,
  clientsPerRound: 2,
  /** The server's store when none is named: a folder under the working directory. */
  store: '.fedkseed/server',
} as const;

/**
 * The extension's local federation: this window is its one client, and its rounds are watched as they
 * happen, so they are short (τ = 50) and few; with one client η is the training rate.
 */
export const LOCAL_FEDERATION_DEFAULTS = {
  ...FEDERATION_COMMON,
  tau: 50,
  rounds: 10,
  clientsPerRound: 1,
} as const;

/** A client of a federation (`fedkseed client`, the extension's Connect to Federation). */
export const CLIENT_DEFAULTS = {
  /** Held-out examples behind each round's loss before and after. */
  heldOutExamples: 16,
} as const;

/**
 * `fedkseed simulate`: a whole federation on one machine, as a demonstration that ends in minutes. Its
 * windows are shorter (64 tokens) and K smaller (1,024) than in training: 3 clients × 10 rounds × τ = 50
 * steps then touch most seeds, so Pro's importance has something to weigh.
 */
export const SIMULATION_DEFAULTS = {
  ...FEDERATION_COMMON,
  eta: FEDERATION_DEFAULTS.eta,
  clients: 3,
  rounds: 10,
  tau: 50,
  k: 1024,
  seqLen: 64,
  /** Dirichlet concentration of a label-skewed split (0.5: strong skew, the paper's Dolly setting). */
  alpha: 0.5,
} as const;

/** Completions in the editor (served by the trainer process beside training). */
export const COMPLETION_DEFAULTS = {
  /** Off until the user turns it on: it costs a copy of the weights and CPU beside training. */
  enabled: false,
  /** 'current': the weights being trained or federated (or a loaded checkpoint); 'base': the base model. */
  source: 'current',
  sampling: 'greedy',
  temperature: 0.2,
  topP: 0.95,
  /** New tokens of one suggestion. */
  maxTokens: 16,
  /** End a suggestion at the end of the line, or of the block. */
  stop: 'line',
  /** onnxruntime threads of the completion session: one, so training keeps the other cores. */
  threads: 1,
  /** Characters before the cursor sent as the prompt (the trainer keeps the tokens that fit the context). */
  prefixChars: 4000,
  /** ms without typing before a suggestion is asked for. */
  debounceMs: 150,
} as const;

/** The extension's settings (keys under `fedkseed.`), each default named once above. */
export const SETTING_DEFAULTS = {
  'server.url': `ws://127.0.0.1:${FEDERATION_COMMON.port}`,
  'model.path': '',
  'model.variant': '',
  'model.tokenizerPath': '',
  'data.path': '',
  'data.include': [] as string[],
  'data.heldOutFraction': TRAINING_DEFAULTS.heldOutFraction,
  'engine.executionProvider': ENGINE_DEFAULTS.provider.extension,
  'engine.threads': ENGINE_DEFAULTS.threads,
  'engine.kernel': ENGINE_DEFAULTS.kernel,
  'engine.maxMemory': ENGINE_DEFAULTS.maxMemory,
  'engine.forwardPrecision': ENGINE_DEFAULTS.forwardPrecision,
  'training.batchSize': TRAINING_DEFAULTS.batchSize,
  'training.sequenceLength': TRAINING_DEFAULTS.seqLen,
  'training.k': TRAINING_DEFAULTS.k,
  'training.epsilon': TRAINING_DEFAULTS.epsilon,
  'training.learningRate': TRAINING_DEFAULTS.eta,
  'training.shape': TRAINING_DEFAULTS.shape,
  'training.generator': TRAINING_DEFAULTS.generator,
  'training.keep': TRAINING_DEFAULTS.keep,
  'training.steps': TRAINING_DEFAULTS.steps,
  'training.evalEvery': TRAINING_DEFAULTS.evalEvery,
  'training.federationSeed': TRAINING_DEFAULTS.federationSeed,
  'localServer.port': LOCAL_FEDERATION_DEFAULTS.port,
  'localServer.rounds': LOCAL_FEDERATION_DEFAULTS.rounds,
  'localServer.clientsPerRound': LOCAL_FEDERATION_DEFAULTS.clientsPerRound,
  'localServer.tau': LOCAL_FEDERATION_DEFAULTS.tau,
  'localServer.sampling': LOCAL_FEDERATION_DEFAULTS.sampling,
  'localServer.deadlineSeconds': LOCAL_FEDERATION_DEFAULTS.deadlineSeconds,
  'completions.enabled': COMPLETION_DEFAULTS.enabled,
  'completions.source': COMPLETION_DEFAULTS.source,
  'completions.sampling': COMPLETION_DEFAULTS.sampling,
  'completions.temperature': COMPLETION_DEFAULTS.temperature,
  'completions.topP': COMPLETION_DEFAULTS.topP,
  'completions.maxTokens': COMPLETION_DEFAULTS.maxTokens,
  'completions.stop': COMPLETION_DEFAULTS.stop,
} as const;

export type SettingKey = keyof typeof SETTING_DEFAULTS;
