// A federation's configuration as zod validates it wherever it crosses a boundary outside the wire (the
// server process's spec, backups, stores), with every hyperparameter within its one bound
// (config-limits.ts): the same intervals the codec checks in WELCOME. Kept beside the codec so the
// server's stores, the contracts and the codec read one definition.
import * as z from 'zod/mini';
import { HYPERPARAMETER_BOUNDS, type Hyperparameter } from './config-limits';
import { GENERATORS, PERTURBATION_SHAPES, type FederationConfig } from './messages';

/** A number within the named hyperparameter's bound. */
export function hyperparameter(name: Hyperparameter): z.ZodMiniNumber<number> {
  const b = HYPERPARAMETER_BOUNDS[name];
  const bottom = 'exclusiveMin' in b && b.exclusiveMin ? z.gt(b.min) : z.gte(b.min);
  return b.integer ? z.number().check(z.int(), bottom, z.lte(b.max)) : z.number().check(bottom, z.lte(b.max));
}

export const federationConfigSchema = z.object({
  k: hyperparameter('k'),
  federationSeed: hyperparameter('federationSeed'),
  epsilon: hyperparameter('epsilon'),
  eta: hyperparameter('eta'),
  tau: hyperparameter('tau'),
  batchSize: hyperparameter('batchSize'),
  sampling: z.enum(['uniform', 'pro']),
  weighting: z.enum(['examples', 'equal']),
  /** How z is scaled tensor by tensor (absent: 'isotropic', as every configuration stored before shapes). */
  shape: z.optional(z.enum(PERTURBATION_SHAPES)),
  /** How z is generated (absent: 'iid', as every configuration stored before generators). */
  generator: z.optional(z.enum(GENERATORS)),
  rounds: hyperparameter('rounds'),
  clientsPerRound: hyperparameter('clientsPerRound'),
  /** Milliseconds on the wire (a u32, at least 1). */
  deadlineMs: z.number().check(z.int(), z.gte(1), z.lte(0xffff_ffff)),
});

// The schema's output must be the protocol's FederationConfig.
const _configMatches: (c: z.infer<typeof federationConfigSchema>) => FederationConfig = (c) => c;
void _configMatches;

/** A federation configuration read from storage, or an error naming every field that is out of bounds. */
export function parseFederationConfig(value: unknown): { ok: true; config: FederationConfig } | { ok: false; error: string } {
  const parsed = federationConfigSchema.safeParse(value);
  if (parsed.success) return { ok: true, config: parsed.data };
  return { ok: false, error: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
}
