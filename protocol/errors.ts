/** Error codes carried by ERROR frames and by every decoding failure (docs/protocol.md, "Error codes"). */
export const ErrorCode = {
  Malformed: 1,
  Truncated: 2,
  UnsupportedVersion: 3,
  UnknownType: 4,
  SeedOutOfRange: 5,
  NonFinite: 6,
  TooLarge: 7,
  AuthFailed: 8,
  ModelMismatch: 9,
  GeneratorMismatch: 10,
  WrongRound: 11,
  NotAssigned: 12,
  RateLimited: 13,
  ServerFull: 14,
  UnexpectedMessage: 15,
  DuplicateClient: 16,
  StateAhead: 17,
  Internal: 18,
  HelloTimeout: 19,
  IdentityMismatch: 20,
  DigestMismatch: 21,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const names = new Map<number, string>(Object.entries(ErrorCode).map(([k, v]) => [v, k]));

export function errorCodeName(code: number): string {
  return names.get(code) ?? `Unknown(${code})`;
}

export function isKnownErrorCode(code: number): code is ErrorCode {
  return names.has(code);
}

/** A protocol violation: raised by the codec at the boundary and turned into an ERROR frame by the peer. */
export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(`${errorCodeName(code)}: ${message}`);
    this.name = 'ProtocolError';
  }
}

/** The message of anything thrown (an Error's message, else its string form): the one way errors become text. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
