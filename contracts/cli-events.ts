// The JSON lines `fedkseed client --json` prints, one object per line: what a supervising program
// (`fedkseed simulate`, scripts) reads to follow a client.
import type { ClientBytes } from '../protocol';

export type ClientEventLine =
  | { readonly event: 'start'; readonly clientId: string; readonly parameters: number; readonly train: number; readonly heldOut: number; readonly kernel: string; readonly provider: string; readonly resumedRound: number }
  | { readonly event: 'connected'; readonly attempt: number }
  | { readonly event: 'welcome'; readonly committedRound: number; readonly rounds: number; readonly k: number; readonly tau: number; readonly sampling: string }
  | { readonly event: 'disconnected'; readonly code: number; readonly reason: string; readonly retryInMs: number | null }
  | { readonly event: 'round'; readonly round: number; readonly steps: number; readonly changedSeeds: number }
  | { readonly event: 'step'; readonly round: number; readonly step: number; readonly steps: number; readonly seed: number; readonly g: number; readonly loss: number | null }
  | { readonly event: 'uploaded'; readonly round: number; readonly pairs: number; readonly bytes: number }
  | { readonly event: 'ack'; readonly round: number; readonly status: string; readonly digest: string }
  | { readonly event: 'synced'; readonly round: number; readonly digest: string }
  | { readonly event: 'result'; readonly round: number; readonly participants: number; readonly lossBefore: number | null; readonly lossAfter: number | null }
  | { readonly event: 'server-error'; readonly code: number; readonly name: string; readonly message: string }
  | { readonly event: 'done'; readonly round: number; readonly digest: string; readonly checkpoint: string; readonly bytes: ClientBytes }
  | { readonly event: 'stopped'; readonly round: number; readonly checkpoint: string | null };

const EVENTS = new Set(['start', 'connected', 'welcome', 'disconnected', 'round', 'step', 'uploaded', 'ack', 'synced', 'result', 'server-error', 'done', 'stopped']);

/** A client event from one line of output, or null for anything else (warnings, blank lines). */
export function parseClientEvent(line: string): ClientEventLine | null {
  if (!line.startsWith('{')) return null;
  try {
    const v = JSON.parse(line) as { event?: unknown };
    return typeof v.event === 'string' && EVENTS.has(v.event) ? (v as ClientEventLine) : null;
  } catch {
    return null;
  }
}

/** JSON has no NaN: a missing loss is null. */
export function finiteOrNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}
