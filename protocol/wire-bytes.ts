// Exact on-the-wire size of a WebSocket frame (RFC 6455 §5.2): 2-byte header, 2 or 8 more for payloads
// of ≥ 126 or ≥ 65,536 bytes, 4 for the mask that client-to-server frames carry. No extensions are
// negotiated (permessage-deflate is off), so this is every byte of the frame.
export function wsFrameBytes(payloadBytes: number, masked: boolean): number {
  const extended = payloadBytes >= 65536 ? 8 : payloadBytes >= 126 ? 2 : 0;
  return 2 + extended + (masked ? 4 : 0) + payloadBytes;
}

/** What one client's connections have moved so far. */
export interface ClientBytes {
  /** WebSocket frame bytes, computed exactly from every frame sent and received. */
  readonly frameUp: number;
  readonly frameDown: number;
  /** Bytes the TCP sockets actually carried (handshakes included), over every connection so far. */
  readonly socketUp: number;
  readonly socketDown: number;
}

/** Bytes FedAvg would move for one client in one round: the model down and the update up, float32. */
export function fedAvgBytesPerClient(paramCount: number): number {
  return 2 * 4 * paramCount;
}
