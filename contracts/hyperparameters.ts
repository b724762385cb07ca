// The hyperparameters' zod schemas for the contracts (the trainer's RPC payloads, the server process's
// spec): one table of bounds (protocol/config-limits.ts), made into schemas beside the codec.
export { federationConfigSchema, hyperparameter } from '../protocol/config-schema';
export { HYPERPARAMETER_BOUNDS, type Hyperparameter } from '../protocol/config-limits';
