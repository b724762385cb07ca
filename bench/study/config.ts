// What the study compares (methods), on what (tasks), and at which size (the full study or --quick).
import type { Gpt2Config } from '../../trainer/model/gpt2-builder';
import type { PerturbationShape } from '../../protocol';

export type MethodKind = 'fedkseed' | 'fedkseed-pro' | 'unrestricted';

export interface MethodSpec {
  /** Stable id used in results.json and file names, e.g. "pro-k1024". */
  readonly id: string;
  readonly label: string;
  readonly kind: MethodKind;
  /** Candidate seeds; null for unrestricted ZO (a fresh seed every step). */
  readonly k: number | null;
  /** How z is scaled tensor by tensor: the paper's rows are isotropic. */
  readonly shape: PerturbationShape;
}

export type TaskId = 'code' | 'fortunes';

export interface TaskSpec {
  readonly id: TaskId;
  readonly title: string;
  /** Model: the bundled pretrained one, or a GPT-2 built from scratch by the study. */
  readonly model: { readonly kind: 'bundled' } | { readonly kind: 'built'; readonly config: Gpt2Config };
  readonly clients: number;
  readonly clientsPerRound: number;
  readonly rounds: number;
  /** Local ZO steps per client per round (the same for every method: the budget). */
  readonly tau: number;
  readonly batchSize: number;
  readonly seqLen: number;
  readonly epsilon: number;
  readonly eta: number;
  /** Held-out windows the global model is evaluated on after every round. */
  readonly evalExamples: number;
  /** Dirichlet concentration of the label skew (fortunes' category files). */
  readonly alpha: number;
  /** Repeats with different seeds. */
  readonly repeats: number;
}

export interface StudyConfig {
  readonly quick: boolean;
  readonly tasks: readonly TaskSpec[];
  readonly methods: readonly MethodSpec[];
  /** Seed of everything random in a repeat (federation seed, client sampling, batch streams). */
  readonly seed: number;
  /** 'every-round': rebuild a replica from scratch and compare digests each round; 'final': once per run. */
  readonly verify: 'every-round' | 'final';
  /** onnxruntime intra-op threads. */
  readonly threads: number;
}

export const FULL_KS: readonly number[] = [64, 256, 1024, 4096];

/**
 * The paper's rows (FedKSeed and FedKSeed-Pro at each K, unrestricted ZO), all isotropic, and with
 * 'tensor-rms' among `shapes` FedKSeed-Pro at each K with that shape beside them (ids end in "-rms"): the
 * product's default against the paper's method, paired (same clients, batches and seeds).
 */
export function methodsFor(ks: readonly number[], shapes: readonly PerturbationShape[] = ['isotropic']): MethodSpec[] {
  const paper: MethodSpec[] = [
    ...ks.map((k): MethodSpec => ({ id: `fedkseed-k${k}`, label: `FedKSeed K=${k}`, kind: 'fedkseed', k, shape: 'isotropic' })),
    ...ks.map((k): MethodSpec => ({ id: `pro-k${k}`, label: `FedKSeed-Pro K=${k}`, kind: 'fedkseed-pro', k, shape: 'isotropic' })),
    { id: 'unrestricted', label: 'unrestricted ZO', kind: 'unrestricted', k: null, shape: 'isotropic' },
  ];
  const shaped = shapes.includes('tensor-rms')
    ? ks.map((k): MethodSpec => ({ id: `pro-k${k}-rms`, label: `FedKSeed-Pro K=${k} tensor-rms`, kind: 'fedkseed-pro', k, shape: 'tensor-rms' }))
    : [];
  return [...(shapes.includes('isotropic') ? paper : []), ...shaped];
}

/** Shapes the study compares by default: the paper's and the product's default. */
export const STUDY_SHAPES: readonly PerturbationShape[] = ['isotropic', 'tensor-rms'];

/**
 * A 20-client federation, 5 clients a round (25%), on the bundled pretrained code model. η = 1e-4 is the
 * simulate default found stable on this model (docs/simulate.md). 8 rounds × 2 repeats keeps its 18
 * federations (≈ 200 s each at 20 rounds here) to about 25 minutes.
 */
function codeTask(quick: boolean): TaskSpec {
  return {
    id: 'code',
    title: "tiny-code-lm (2.6M, pretrained) on this repository's code, whole packages per client",
    model: { kind: 'bundled' },
    clients: quick ? 6 : 20,
    clientsPerRound: quick ? 3 : 5,
    rounds: quick ? 3 : 8,
    tau: quick ? 8 : 40,
    batchSize: 4,
    seqLen: 64,
    epsilon: 1e-3,
    eta: 1e-4,
    evalExamples: quick ? 16 : 96,
    alpha: 0.5,
    repeats: quick ? 1 : 2,
  };
}

/**
 * A GPT-2 built from scratch (random initialisation) over the bundled tokenizer, on Debian's fortunes
 * split by category file with a Dirichlet(0.5) label skew.
 */
function fortunesTask(quick: boolean): TaskSpec {
  return {
    id: 'fortunes',
    title: 'GPT-2 0.37M built from scratch on Debian fortunes, Dirichlet(0.5) over category files',
    model: { kind: 'built', config: { vocab: 4096, ctx: 64, dModel: 64, layers: 2, heads: 2, mlpRatio: 4, tiedEmbeddings: true, dtype: 'float32', seed: 7 } },
    clients: quick ? 6 : 20,
    clientsPerRound: quick ? 3 : 5,
    rounds: quick ? 3 : 20,
    tau: quick ? 8 : 40,
    batchSize: 4,
    seqLen: 64,
    epsilon: 1e-3,
    eta: 5e-3,
    evalExamples: quick ? 16 : 96,
    alpha: 0.5,
    repeats: quick ? 1 : 3,
  };
}

export function buildTasks(quick: boolean, only?: readonly TaskId[]): TaskSpec[] {
  const all = [codeTask(quick), fortunesTask(quick)];
  return only && only.length > 0 ? all.filter((t) => only.includes(t.id)) : all;
}

export const QUICK_KS: readonly number[] = [64, 1024];
