// The transport's limits on what one peer, one address and all of them together may hold or send:
// frame size, connections, message rate, the HELLO deadline and the caps on sockets without a HELLO,
// and the heartbeat. startServer takes a partial set over DEFAULT_LIMITS (federation/server.ts).

export interface ServerLimits {
  /** Largest accepted frame payload; larger ones get a TooLarge error (4× this closes at the ws layer). */
  readonly maxMessageBytes: number;
  /** WebSocket connections in all; beyond it the oldest silent one without a HELLO goes, else the new one is refused. */
  readonly maxConnections: number;
  readonly messagesPerSecond: number;
  readonly messageBurst: number;
  /** A socket that has not said HELLO by then (from its TCP accept) is closed (admission.ts). */
  readonly helloTimeoutMs: number;
  /** Sockets without an accepted HELLO, in all: the rest of maxConnections is only ever held by authenticated sessions. */
  readonly maxPending: number;
  /** Sockets without an accepted HELLO from one remote address; beyond it that address's oldest silent one is closed. */
  readonly maxPendingPerAddress: number;
  /** Ping interval; a peer that missed the previous pong is dropped. */
  readonly heartbeatMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxMessageBytes: 1 << 20,
  maxConnections: 10_000,
  messagesPerSecond: 20,
  messageBurst: 40,
  helloTimeoutMs: 10_000,
  // A tenth of the connections: an honest client holds a pending slot only for the milliseconds until its HELLO.
  maxPending: 1000,
  // Clients behind one NAT address connect one by one; a flood from one address ages out its own sockets.
  maxPendingPerAddress: 32,
  heartbeatMs: 15_000,
};
