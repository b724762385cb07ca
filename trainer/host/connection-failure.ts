// Why a federation could not be reached, from the socket's error or the server's refusal: refused,
// DNS, TLS, auth, timeout, closed. The extension turns the cause into actions (Open Setting, Set Token,
// Retry); the message says it in words.
import { ErrorCode } from '../../protocol';
import { FederationClientError, FederationGaveUpError, type ClientEvents } from '../../federation/client';
import type { ConnectionCause, ConnectionFailure } from '../../contracts/trainer-payloads';

type Close = Omit<ClientEvents['disconnected'][0], 'retryInMs'>;

/** A federation that could not be reached: a JSON-RPC `connectionFailed` error with `failure` as its data. */
export class ConnectionFailedError extends Error {
  constructor(readonly failure: ConnectionFailure) {
    super(connectionFailureMessage(failure));
    this.name = 'ConnectionFailedError';
  }
}

const TLS_CODES = /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_SSL)/;

export function causeOf(close: Pick<Close, 'error' | 'errorCode'>): ConnectionCause {
  const code = close.errorCode ?? '';
  const error = close.error ?? '';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') return 'dns';
  if (TLS_CODES.test(code) || /certificate|SSL routines|TLS/i.test(error)) return 'tls';
  if (/Unexpected server response: 40[13]/.test(error)) return 'auth';
  if (code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || /timed? ?out/i.test(error)) return 'timeout';
  if (!close.error) return 'closed';
  return 'other';
}

const causeWords: Record<ConnectionCause, string> = {
  refused: 'the connection was refused (is the server running, and is this its port?)',
  dns: "the server's host name could not be resolved",
  tls: 'the TLS handshake failed (a wss:// certificate problem, or wss:// to a plain ws:// server)',
  auth: 'the server refused the token',
  timeout: 'the server did not answer in time',
  closed: 'the server closed the connection',
  other: 'the connection failed',
};

export function connectionFailureMessage(f: ConnectionFailure): string {
  const tries = f.attempts > 1 ? ` after ${f.attempts} attempts` : '';
  return `cannot reach the federation at ${f.url}${tries}: ${causeWords[f.cause]} (${f.detail})`;
}

export function failureFromClose(url: string, close: Close): ConnectionFailure {
  return { kind: 'connection', cause: causeOf(close), url, attempts: close.attempt, detail: close.error ?? (close.reason || `close code ${close.code}`) };
}

/** A client's error as a connection failure, when it is one (a refusal of the token, a give-up). */
export function failureFromError(url: string, err: unknown): ConnectionFailure | null {
  if (err instanceof FederationGaveUpError) return failureFromClose(url, err.last);
  if (err instanceof FederationClientError && err.code === ErrorCode.AuthFailed)
    return { kind: 'connection', cause: 'auth', url, attempts: 1, detail: err.message };
  return null;
}
