// The messages of the federation protocol, as a discriminated union on `type`. Byte layouts are in
// docs/protocol.md; node/codec.ts is the one place that turns them into frames and back.
import type { CoefficientDelta } from './coefficients';
import type { ErrorCode } from './errors';
import type { QuantizedProbabilities } from './probabilities';

/** 2: WELCOME carries the perturbation's shape. */
export const PROTOCOL_VERSION = 2;
export const MODEL_HASH_BYTES = 32;
export const DIGEST_BYTES = 32;
export const MAX_CLIENT_ID_BYTES = 64;
export const MAX_TOKEN_BYTES = 256;
export const MAX_ERROR_MESSAGE_BYTES = 1024;
/** An upload never carries more pairs than this, whatever τ is configured. */
export const MAX_PAIRS = 1 << 20;

export const MessageType = {
  Hello: 1,
  Welcome: 2,
  RoundAssignment: 3,
  Upload: 4,
  UploadAck: 5,
  RoundResult: 6,
  Sync: 7,
  Error: 8,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export type SamplingMode = 'uniform' | 'pro';
export type Weighting = 'examples' | 'equal';
/**
 * How z is scaled tensor by tensor (trainer/zo/shape.ts): 'isotropic', z ~ N(0, I) as in the paper;
 * 'tensor-rms', each tensor's z scaled by the power of two nearest to its base weights' RMS over the model's.
 */
export const PERTURBATION_SHAPES = ['isotropic', 'tensor-rms'] as const;
export type PerturbationShape = (typeof PERTURBATION_SHAPES)[number];
/**
 * How z is generated (trainer/zo/rank1.ts): 'iid', every parameter hashed on its own, as in the paper;
 * 'rank1', every matrix's z an outer product of two hashed vectors (a seed costs R + C hashes per R×C
 * matrix, and a round's change is a product of thin matrices).
 */
export const GENERATORS = ['iid', 'rank1'] as const;
export type Generator = (typeof GENERATORS)[number];

/** The federation's configuration, sent in WELCOME; identical for every client. */
export interface FederationConfig {
  /** Number of shared candidate seeds. */
  readonly k: number;
  /** Seed F of the counter-based generator z = f(F, j, i). */
  readonly federationSeed: number;
  readonly epsilon: number;
  readonly eta: number;
  /**
   * How z is scaled tensor by tensor; every replica derives the same multipliers from w0. Absent:
   * 'isotropic' (the paper's method, and every federation stored before shapes existed).
   */
  readonly shape?: PerturbationShape;
  /** How z is generated; absent: 'iid' (every federation stored before generators existed). */
  readonly generator?: Generator;
  /** Local ZO steps per round (τ). */
  readonly tau: number;
  readonly batchSize: number;
  readonly sampling: SamplingMode;
  readonly weighting: Weighting;
  /** Total rounds of the federation. */
  readonly rounds: number;
  readonly clientsPerRound: number;
  /** Milliseconds a sampled client has to upload after its assignment was sent. */
  readonly deadlineMs: number;
}

export interface HelloMessage {
  readonly type: 'hello';
  readonly clientId: string;
  readonly token: string;
  readonly modelHash: Uint8Array;
  /** The committed round whose state the client's replica holds (0: the base model). */
  readonly lastSyncedRound: number;
  readonly generatorVersion: number;
}

export interface WelcomeMessage {
  readonly type: 'welcome';
  readonly config: FederationConfig;
  /** The last committed round on the server. */
  readonly committedRound: number;
}

export interface RoundAssignmentMessage {
  readonly type: 'round';
  readonly round: number;
  /** The delta below is C_{round−1} − C_{baseRound}. */
  readonly baseRound: number;
  readonly delta: CoefficientDelta;
  /** Pro only: the quantized normalised importance that defines p. */
  readonly probabilities: QuantizedProbabilities | null;
  /** ZO steps this client should run (τ unless the server says otherwise). */
  readonly steps: number;
}

export interface SeedGradient {
  readonly seed: number;
  readonly g: number;
}

export interface UploadMessage {
  readonly type: 'upload';
  readonly round: number;
  readonly examples: number;
  readonly lossBeforeSum: number;
  readonly lossBeforeCount: number;
  readonly lossAfterSum: number;
  readonly lossAfterCount: number;
  /** The committed round the replica digest refers to (round − 1 for a synced client). */
  readonly digestRound: number;
  /** SHA-256 (32 bytes) of the client's exact replica at digestRound. */
  readonly digest: Uint8Array;
  /** g is transmitted as float32. */
  readonly pairs: readonly SeedGradient[];
}

export type UploadStatus = 'accepted' | 'late' | 'rejected';
/** pending: no quorum of clients has agreed on the state's digest yet (the reference is decided later). */
export type DigestStatus = 'reference' | 'match' | 'mismatch' | 'pending';

export interface UploadAckMessage {
  readonly type: 'ack';
  readonly round: number;
  readonly status: UploadStatus;
  readonly digest: DigestStatus;
}

export interface RoundResultMessage {
  readonly type: 'result';
  readonly round: number;
  readonly participants: number;
  readonly examples: number;
  readonly lossBefore: number;
  readonly lossAfter: number;
}

export interface SyncMessage {
  readonly type: 'sync';
  /** The committed round the delta brings the replica to. */
  readonly round: number;
  readonly baseRound: number;
  readonly delta: CoefficientDelta;
  /** True once the federation has run all its rounds. */
  readonly finished: boolean;
}

export interface ErrorMessage {
  readonly type: 'error';
  readonly code: ErrorCode;
  readonly message: string;
}

export type Message =
  HelloMessage | WelcomeMessage | RoundAssignmentMessage | UploadMessage | UploadAckMessage | RoundResultMessage | SyncMessage | ErrorMessage;

/** ERROR travels both ways. */
export type ClientMessage = HelloMessage | UploadMessage | ErrorMessage;
export type ServerMessage = Exclude<Message, HelloMessage | UploadMessage>;
