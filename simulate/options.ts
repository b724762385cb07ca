// What a simulation is asked to do, what it reports while it runs, and what it ends with.
import type { FederationConfig, Generator, PerturbationShape } from '../protocol';
import type { ClientEvent } from '../contracts/cli-events';
import type { DataProblem } from '../trainer/data/problems';
import type { DataFormat } from '../trainer/data/readers';
import type { KernelChoice } from '../trainer/zo/kernels-select';
import type { ForwardPrecision } from '../contracts/trainer-payloads';
import type { Invocation } from './cli-invocation';
import type { ClientExit } from './client-process';
import type { RoundReport, SimulationReport } from './report';
import type { ShardPlan, SplitMode } from './shards';

export interface SimulationOptions {
  readonly data: string;
  readonly format?: DataFormat;
  readonly include?: string[];
  readonly model?: string;
  /** Which file of a model folder (docs/models.md); every process opens the same one. */
  readonly variant?: string;
  readonly tokenizer?: string;
  /** Globs narrowing the trainable set; part of the model identity, so every process gets them. */
  readonly trainable?: readonly string[];
  readonly freeze?: readonly string[];
  readonly kernel?: KernelChoice;
  readonly provider?: string;
  /** Every process's forward products (the WebGPU engine's; absent: the engine's default). */
  readonly forwardPrecision?: ForwardPrecision;
  readonly clients: number;
  /** Default: every client, every round. */
  readonly clientsPerRound?: number;
  readonly rounds: number;
  readonly tau: number;
  readonly k: number;
  readonly federationSeed: number;
  readonly epsilon: number;
  readonly eta: number;
  readonly shape: PerturbationShape;
  /** How z is generated (absent: 'iid'). */
  readonly generator?: Generator;
  readonly batchSize: number;
  readonly seqLen: number;
  readonly sampling: FederationConfig['sampling'];
  readonly weighting: FederationConfig['weighting'];
  readonly split: SplitMode;
  readonly alpha: number;
  readonly groupsPerClient?: number;
  /** Share of the data (by file / example) held out from every client for the global evaluation. */
  readonly heldOut: number;
  readonly evalExamples: number;
  readonly deadlineMs: number;
  readonly outDir: string;
  /** onnxruntime threads of each client process and of the evaluator. */
  readonly threads: number;
  /** Memory budget in bytes of each client process and of the evaluator (default: the engine's). */
  readonly maxMemory?: number;
  readonly invocation?: Invocation;
  readonly signal?: AbortSignal;
}

export type SimulationEvent =
  | { readonly type: 'data-problem'; readonly problem: DataProblem }
  | {
      readonly type: 'prepared';
      readonly parameters: number;
      readonly train: number;
      readonly heldOut: number;
      readonly evalExamples: number;
      readonly split: 'group' | 'dirichlet';
      readonly note?: string;
      readonly clients: readonly { readonly id: string; readonly examples: number; readonly groups: readonly string[] }[];
      readonly unassigned: ShardPlan['unassigned'];
    }
  | { readonly type: 'server'; readonly url: string }
  | { readonly type: 'round'; readonly report: RoundReport; readonly rounds: number }
  | { readonly type: 'client'; readonly id: string; readonly event: ClientEvent }
  | { readonly type: 'client-exit'; readonly id: string; readonly exit: ClientExit };

export type SimulationListener = (e: SimulationEvent) => void;

export interface SimulationResult {
  readonly report: SimulationReport;
  readonly files: { readonly json: string; readonly html: string };
}

/** The federation a simulation runs: every client is sampled unless fewer per round are asked for. */
export function simulationConfig(o: SimulationOptions): FederationConfig {
  return {
    k: o.k,
    federationSeed: o.federationSeed,
    epsilon: o.epsilon,
    eta: o.eta,
    shape: o.shape,
    ...(o.generator === undefined || o.generator === 'iid' ? {} : { generator: o.generator }),
    tau: o.tau,
    batchSize: o.batchSize,
    sampling: o.sampling,
    weighting: o.weighting,
    rounds: o.rounds,
    clientsPerRound: Math.min(o.clientsPerRound ?? o.clients, o.clients),
    deadlineMs: o.deadlineMs,
  };
}
