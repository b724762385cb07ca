// A fine-tuned model on disk is the base model's identity plus K integer coefficients: a few KB.
// Written atomically (temp file + rename) so a crash never leaves a half-written checkpoint.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { GENERATOR_VERSION } from './generator';
import type { ParameterSet } from './parameters';
import { GENERATORS, PERTURBATION_SHAPES, type FederationConfig, type Generator, type PerturbationShape } from '../../protocol';
import { HYPERPARAMETER_BOUNDS as BOUNDS } from '../../protocol/config-limits';
import { errorMessage } from '../../protocol/errors';

const CheckpointSchema = z.object({
  format: z.literal('fedkseed-coefficients'),
  version: z.literal(1),
  /** SHA-256 (hex) of the base model file(s). */
  baseModel: z.string().regex(/^[0-9a-f]{64}$/),
  generatorVersion: z.number().int(),
  federationSeed: z.number().int().min(BOUNDS.federationSeed.min).max(BOUNDS.federationSeed.max),
  k: z.number().int().min(BOUNDS.k.min).max(BOUNDS.k.max),
  eta: z.number().nonnegative(),
  epsilon: z.number().gt(BOUNDS.epsilon.min).max(BOUNDS.epsilon.max),
  /** How z was scaled tensor by tensor (absent: 'isotropic', as every checkpoint written before shapes). */
  shape: z.enum(PERTURBATION_SHAPES).optional(),
  /** How z was generated (absent: 'iid', as every checkpoint written before generators). */
  generator: z.enum(GENERATORS).optional(),
  /** Seed index → integer coefficient in units of 2^-16 (zeros omitted). */
  coefficients: z.record(z.string().regex(/^\d+$/), z.number().int()),
  /** Local ZO steps that produced these coefficients (informational). */
  steps: z.number().int().nonnegative().optional(),
  /** Federation round these coefficients belong to, when they came from a federation. */
  round: z.number().int().nonnegative().optional(),
  /** How the held-out loss beside these coefficients was measured, so `fedkseed eval` can measure it the same way. */
  evaluation: z
    .object({
      /** Tokens per example window. */
      seqLen: z.number().int().positive(),
      /** Share of the data held out. */
      heldOutFraction: z.number().min(0).max(1),
      /** The first n held-out examples were scored. */
      examples: z.number().int().positive(),
      /** Globs of the files read from a folder of text (absent: every text file). */
      include: z.array(z.string()).optional(),
      /** The dataset the split was drawn from, as an absolute path (absent: not recorded). */
      data: z.string().optional(),
    })
    .optional(),
});

/** How a checkpoint's held-out loss was measured. */
export type EvaluationSetup = NonNullable<Checkpoint['evaluation']>;

export type Checkpoint = z.infer<typeof CheckpointSchema>;

export function saveCheckpoint(path: string, checkpoint: Checkpoint): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(CheckpointSchema.parse(checkpoint), null, 1)}\n`);
  renameSync(tmp, path);
}

export function loadCheckpoint(path: string): Checkpoint {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read checkpoint ${path}: ${errorMessage(err)}`, { cause: err });
  }
  const parsed = CheckpointSchema.safeParse(withEpsilon(raw));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`checkpoint ${path} is invalid at ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  for (const j of Object.keys(parsed.data.coefficients)) {
    if (Number(j) >= parsed.data.k) throw new Error(`checkpoint ${path}: seed index ${j} is not below K = ${parsed.data.k}`);
  }
  return parsed.data;
}

/** Checkpoints written before ε was named `epsilon` call it `eps`: read them as they are meant. */
function withEpsilon(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || 'epsilon' in raw || !('eps' in raw)) return raw;
  const { eps, ...rest } = raw as Record<string, unknown>;
  return { ...rest, epsilon: eps };
}

/** Builds the replica base + Σ C_j z_j from a checkpoint, after checking it belongs to this model. */
export function applyCheckpoint(params: ParameterSet, checkpoint: Checkpoint, modelIdentity: string, source = 'checkpoint'): void {
  if (checkpoint.baseModel !== modelIdentity) {
    throw new Error(`${source} was made for base model ${checkpoint.baseModel.slice(0, 12)}…, not this model (${modelIdentity.slice(0, 12)}…)`);
  }
  if (checkpoint.generatorVersion !== GENERATOR_VERSION) {
    throw new Error(`${source} uses generator version ${checkpoint.generatorVersion}; this build implements ${GENERATOR_VERSION}`);
  }
  const entries = Object.entries(checkpoint.coefficients);
  params.setGenerator(checkpoint.generator ?? 'iid');
  params.setShape(checkpoint.shape ?? 'isotropic');
  params.applyCoefficientDelta(
    checkpoint.federationSeed,
    entries.map(([j]) => Number(j)),
    entries.map(([, c]) => c),
    checkpoint.eta,
  );
}

/** What a checkpoint records besides its coefficients. */
export interface CheckpointOrigin {
  readonly baseModel: string;
  readonly federationSeed: number;
  readonly k: number;
  readonly eta: number;
  readonly epsilon: number;
  readonly shape?: PerturbationShape;
  readonly generator?: Generator;
}

/** What a federation's checkpoint records of its configuration (one place, so none of it is left out). */
export function federationOrigin(
  baseModel: string,
  config: Pick<FederationConfig, 'federationSeed' | 'k' | 'eta' | 'epsilon' | 'shape' | 'generator'>,
): CheckpointOrigin {
  const generator = config.generator ?? 'iid';
  return {
    baseModel,
    federationSeed: config.federationSeed,
    k: config.k,
    eta: config.eta,
    epsilon: config.epsilon,
    shape: config.shape ?? 'isotropic',
    // Absent for 'iid': such a checkpoint reads the same in a build that knows no generators.
    ...(generator === 'iid' ? {} : { generator }),
  };
}

/** A checkpoint of this generator version from coefficients given densely or as seed → integer. */
export function makeCheckpoint(
  origin: CheckpointOrigin,
  coefficients: ArrayLike<number> | ReadonlyMap<number, number>,
  extra: { steps?: number; round?: number; evaluation?: EvaluationSetup } = {},
): Checkpoint {
  const record = coefficients instanceof Map ? coefficientRecord(denseFrom(coefficients, origin.k)) : coefficientRecord(coefficients as ArrayLike<number>);
  return { format: 'fedkseed-coefficients', version: 1, generatorVersion: GENERATOR_VERSION, ...origin, coefficients: record, ...extra };
}

function denseFrom(sparse: ReadonlyMap<number, number>, k: number): Float64Array {
  const dense = new Float64Array(k);
  for (const [j, c] of sparse) dense[j] = c;
  return dense;
}

/** Sparse record of a dense coefficient vector (zeros omitted). */
export function coefficientRecord(c: ArrayLike<number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (let j = 0; j < c.length; j++) if (c[j] !== 0) out[String(j)] = c[j];
  return out;
}
