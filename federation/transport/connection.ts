// One WebSocket connection as the transport keeps it: its socket, its rate buckets (frames, and the log
// lines it may cause), the client and token its HELLO established, and whether it was torn down. The
// round engine knows a connection only as the opaque peer it sends to through the outbox (outbox.ts).
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { TokenBucket } from '../rate-limit';
import type { ServerLimits } from './limits';

export interface Connection {
  readonly ws: WebSocket;
  readonly bucket: TokenBucket;
  /** The client this connection speaks for, once its hello was accepted. */
  clientId: string | null;
  /** The token its hello was verified with: a revocation closes the connection. */
  tokenId: string | null;
  alive: boolean;
  /** Its socket's key in the admission of sockets without a HELLO. */
  readonly admissionKey: string;
  /** hello is being verified (async): further frames wait for the verdict. */
  pendingHello: boolean;
  /** A fatal error was sent: nothing more from this peer is decoded, answered or logged. */
  dead: boolean;
  /** Log lines this connection may still cause (refilled over time); the rest are counted, not written. */
  readonly logBucket: TokenBucket;
  suppressed: number;
}

/** Log lines one connection may cause: a burst, then one a second; the rest are summed up at its close. */
const LOG_LINES_PER_SECOND = 1;
const LOG_LINES_BURST = 20;

/** A connection just upgraded to WebSocket: no HELLO yet, full buckets. */
export function newConnection(ws: WebSocket, admissionKey: string, limits: Pick<ServerLimits, 'messagesPerSecond' | 'messageBurst'>): Connection {
  return {
    ws,
    bucket: new TokenBucket(limits.messagesPerSecond, limits.messageBurst),
    clientId: null,
    tokenId: null,
    alive: true,
    admissionKey,
    pendingHello: false,
    dead: false,
    logBucket: new TokenBucket(LOG_LINES_PER_SECOND, LOG_LINES_BURST),
    suppressed: 0,
  };
}

/** One TCP connection's key, the same for its TLS socket (which reports its remote address and port). */
export const socketKey = (socket: Socket): string => `${socket.remoteAddress ?? ''}|${socket.remotePort ?? ''}`;
