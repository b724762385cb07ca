// The engine's memory budget: what a training process must hold (the working weights, copies of w0 that
// cannot be read back from the model file, onnxruntime's own memory for the forward) and what it may
// spend the rest of the budget on, in order of what it buys:
//
//   1. the z store (2 bytes per parameter): a ZO step hashes z once instead of three times (step speed);
//      a budget that cannot hold all of it gets a store over part of the weights, the rest hashed;
//   2. S held (8 bytes per parameter): a round's coefficient change costs its own seeds instead of every
//      applied seed, and going back to the replica is a rebuild instead of a read of the replica file.
//
// S that the budget cannot hold goes to a float64 scratch file (sums 'file') when the scratch folder's
// filesystem has room for it, 8 bytes per parameter plus SCRATCH_MARGIN: a change then costs its own seeds
// and a read and a write of S, instead of every applied seed (hours per round at 1.3B after many rounds).
// Without that room, or when the free space is unknown, S is kept as its coefficients ('coefficients').
//
// Every choice gives the same bits (docs/zo-engine.md, "Memory"); only time and memory differ. A budget
// below what must be held fails before anything large is allocated, with the figure needed.

import type { SumsMode } from './parameters';

/** Bytes per parameter of each buffer. */
export const BYTES = { weights: 4, base: 4, sums: 8, zStore: 2 } as const;

/** Without a budget, the engine plans for this share of the machine's physical memory. */
export const AUTO_BUDGET_SHARE = 0.8;

/**
 * Share of the budget the optional buffers leave unplanned: onnxruntime's memory is an estimate, and
 * a budget is a ceiling to stay under, not a target.
 */
export const BUDGET_MARGIN = 0.05;

/** What the S file leaves free on its filesystem: a tenth of its size, at least 1 GiB (a full disk fails a round). */
export const SCRATCH_MARGIN = { share: 0.1, minBytes: 2 ** 30 } as const;

/** Free bytes an S file of `indexSpan` parameters needs to be chosen. */
export const sumsFileNeeds = (indexSpan: number): number =>
  indexSpan * BYTES.sums + Math.max(SCRATCH_MARGIN.minBytes, SCRATCH_MARGIN.share * indexSpan * BYTES.sums);

export interface MemoryPlanInput {
  /** Global indices of the weights, gaps included (ParameterSet.indexSpan). */
  readonly indexSpan: number;
  /** Parameters whose w0 must be held as a copy (no source in the model file). */
  readonly heldBase: number;
  /** onnxruntime's own memory for the forward, and the process around it (estimateRuntimeBytes). */
  readonly runtimeBytes: number;
  /** The budget in bytes; null: AUTO_BUDGET_SHARE of `totalMemory`. */
  readonly budgetBytes: number | null;
  /** Physical memory of the machine (os.totalmem()). */
  readonly totalMemory: number;
  /** Whether the engine would keep a z store at all (WASM kernels, split passes or a small model). */
  readonly storeWanted: boolean;
  /** Free bytes on the scratch folder's filesystem (freeBytesAt(spill folder)); absent or null: unknown. */
  readonly scratchFreeBytes?: number | null;
}

export interface MemoryPlan {
  readonly budgetBytes: number;
  /** Whether the budget was given (else it is the automatic share of physical memory). */
  readonly explicitBudget: boolean;
  /** How S is kept: in memory, in a scratch file (8 bytes a parameter on disk), or as its coefficients. */
  readonly sums: SumsMode;
  /** Share of the parameters kept in the z store, 0..1. */
  readonly zStore: number;
  /** Planned bytes by buffer. */
  readonly bytes: { readonly weights: number; readonly base: number; readonly zStore: number; readonly sums: number; readonly runtime: number };
  readonly totalBytes: number;
  /** The least the model can train in (weights, held w0 copies, onnxruntime). */
  readonly minimumBytes: number;
}

/** A model that cannot train within the budget. */
export class MemoryBudgetError extends Error {
  constructor(
    message: string,
    readonly neededBytes: number,
    readonly budgetBytes: number,
  ) {
    super(message);
    this.name = 'MemoryBudgetError';
  }
}

export const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(bytes < 10 * 2 ** 30 ? 2 : 1)} GiB`;

export function planMemory(input: MemoryPlanInput): MemoryPlan {
  const explicitBudget = input.budgetBytes !== null;
  const budgetBytes = input.budgetBytes ?? Math.floor(AUTO_BUDGET_SHARE * input.totalMemory);
  const n = input.indexSpan;
  const weights = n * BYTES.weights;
  const base = input.heldBase * BYTES.base;
  const minimumBytes = weights + base + input.runtimeBytes;
  if (minimumBytes > budgetBytes) {
    const parts = [
      `working weights ${gib(weights)}`,
      ...(base > 0 ? [`copies of w0 that cannot be read back from the model file ${gib(base)}`] : []),
      `onnxruntime and the process ≈ ${gib(input.runtimeBytes)}`,
    ];
    const which = explicitBudget
      ? 'the memory budget (--max-memory, fedkseed.engine.maxMemory) is'
      : `the automatic budget (${Math.round(AUTO_BUDGET_SHARE * 100)}% of this machine's ${gib(input.totalMemory)}) is`;
    throw new MemoryBudgetError(
      `this model needs at least ${gib(minimumBytes)} to train (${parts.join(', ')}); ${which} ${gib(budgetBytes)}`,
      minimumBytes,
      budgetBytes,
    );
  }
  let left = Math.max(0, (1 - BUDGET_MARGIN) * budgetBytes - minimumBytes);
  let zStore = 0;
  if (input.storeWanted) {
    zStore = Math.min(1, left / (n * BYTES.zStore));
    left -= zStore * n * BYTES.zStore;
  }
  const sums: SumsMode = left >= n * BYTES.sums ? 'held' : (input.scratchFreeBytes ?? 0) >= sumsFileNeeds(n) ? 'file' : 'coefficients';
  const bytes = { weights, base, zStore: Math.round(zStore * n * BYTES.zStore), sums: sums === 'held' ? n * BYTES.sums : 0, runtime: input.runtimeBytes };
  return { budgetBytes, explicitBudget, sums, zStore, bytes, totalBytes: bytes.weights + bytes.base + bytes.zStore + bytes.sums + bytes.runtime, minimumBytes };
}

/**
 * What onnxruntime and the process hold around the weights while training a causal LM of this shape: the
 * process and onnxruntime's libraries, and the forward's activations (the logits and the loss's
 * probabilities over the vocabulary, a few of the widest hidden states, attention scores; onnxruntime
 * frees a layer's activations as the next runs). Calibrated on the GPT-2 builder's 124M and 1.3B shapes
 * at batch 1 and 8 (docs/benchmarks.md, "Memory").
 */
export function estimateRuntimeBytes(shape: RuntimeShape, workload: Workload): number {
  const tokens = workload.batch * workload.seq;
  const process = 160 * 2 ** 20;
  const logits = 3.5 * tokens * shape.vocab * 4;
  const layer = 12 * tokens * shape.hidden * 4 + 3 * workload.batch * Math.max(1, shape.hidden / 256) * workload.seq * workload.seq * 4;
  return Math.ceil(process + logits + layer);
}

export interface RuntimeShape {
  /** Vocabulary size (logits per token). */
  readonly vocab: number;
  /** The widest activation per token (the largest dimension of the weight matrices but the vocabulary). */
  readonly hidden: number;
}

export interface Workload {
  readonly batch: number;
  readonly seq: number;
}

/** The shape estimateRuntimeBytes needs, from the weights' dimensions. */
export function runtimeShape(weights: readonly { readonly dims: readonly number[] }[], vocab: number | null): RuntimeShape {
  let hidden = 1;
  for (const { dims } of weights) if (dims.length === 2) for (const d of dims) if (d !== vocab) hidden = Math.max(hidden, d);
  return { vocab: vocab ?? 1, hidden };
}

/** Parses a memory size: a number of bytes, or with a unit (K, M, G, T; KB/KiB …; case-insensitive). */
export function parseMemorySize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (!m) throw new RangeError(`"${text}" is not a memory size (e.g. 12G, 8000M, 16GiB)`);
  const power = { '': 0, k: 1, m: 2, g: 3, t: 4 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  const bytes = Math.round(Number(m[1]) * 1024 ** power);
  if (!(bytes > 0)) throw new RangeError(`"${text}" is not a positive memory size`);
  return bytes;
}
