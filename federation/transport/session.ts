// The frames of one connection, handled one after another: counted, rate-limited, size-checked and
// decoded; a HELLO is authenticated (auth.ts), judged by the round engine and joins it; an upload of a
// joined client goes to the engine; an ERROR the client reports is logged; anything else is refused.
import type { RawData } from 'ws';
import { ErrorCode, ProtocolError, type HelloMessage } from '../../protocol';
import { decodeMessage } from '../../protocol/node/codec';
import { clientIdProblem } from '../../protocol/client-id';
import type { Admission } from '../admission';
import type { RoundEngine } from '../round-engine';
import type { TokenAuth } from './auth';
import type { Connection } from './connection';
import type { ServerLimits } from './limits';
import type { ConnectionOutbox } from './outbox';

export interface SessionParts {
  /** The federation's K: what a frame's seeds are checked against. */
  readonly k: number;
  readonly limits: Pick<ServerLimits, 'maxMessageBytes' | 'messagesPerSecond'>;
  readonly admission: Admission<string>;
  readonly auth: TokenAuth;
  readonly outbox: ConnectionOutbox;
  readonly engine: RoundEngine<Connection>;
}

function rawToBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

export class Sessions {
  constructor(private readonly parts: SessionParts) {}

  /** One frame of `conn`; the caller runs a connection's frames one after another, in order. */
  onFrame(conn: Connection, data: RawData, isBinary: boolean): Promise<void> {
    const { limits, outbox, engine } = this.parts;
    if (conn.dead) return Promise.resolve();
    const frame = rawToBytes(data);
    outbox.account(conn, 'up', frame.length);
    if (!conn.bucket.take()) return Promise.resolve(outbox.refuse(conn, ErrorCode.RateLimited, `more than ${limits.messagesPerSecond} messages per second`));
    if (!isBinary) return Promise.resolve(outbox.refuse(conn, ErrorCode.Malformed, 'text frames are not part of the protocol'));
    if (frame.length > limits.maxMessageBytes)
      return Promise.resolve(outbox.refuse(conn, ErrorCode.TooLarge, `frame of ${frame.length} bytes exceeds ${limits.maxMessageBytes}`));
    let m;
    try {
      m = decodeMessage(frame, { k: this.parts.k });
    } catch (err) {
      if (err instanceof ProtocolError) return Promise.resolve(outbox.refuse(conn, err.code, err.message));
      throw err;
    }
    if (m.type === 'hello') {
      if (conn.clientId !== null || conn.pendingHello) return Promise.resolve(outbox.refuse(conn, ErrorCode.UnexpectedMessage, 'hello sent twice'));
      conn.pendingHello = true;
      return this.onHello(conn, m).finally(() => {
        conn.pendingHello = false;
      });
    }
    if (conn.clientId === null) return Promise.resolve(outbox.refuse(conn, ErrorCode.UnexpectedMessage, `${m.type} before a successful hello`));
    if (m.type === 'upload') return engine.upload(conn, conn.clientId, m);
    if (m.type === 'error') {
      outbox.connLog(conn, 'warn', { event: 'client_reported_error', clientId: conn.clientId, code: m.code, message: m.message.slice(0, 200) });
      return Promise.resolve();
    }
    return Promise.resolve(outbox.refuse(conn, ErrorCode.UnexpectedMessage, `${m.type} is a server message`));
  }

  /** Authentication here; whether the client belongs to this federation is the engine's to say. */
  private async onHello(conn: Connection, m: HelloMessage): Promise<void> {
    const { admission, auth, outbox, engine } = this.parts;
    admission.spoke(conn.admissionKey);
    // One rule for client ids everywhere (protocol/client-id.ts): none reaches a log or a terminal unless it is printable.
    const idProblem = clientIdProblem(m.clientId);
    if (idProblem !== null) return outbox.refuse(conn, ErrorCode.Malformed, idProblem);
    const verdict = await auth.authenticate(conn, m);
    if ('refused' in verdict) return outbox.refuse(conn, verdict.refused, verdict.message);
    const refusal = engine.admit(m);
    if (refusal) return outbox.refuse(conn, refusal.code, refusal.message);
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    admission.settle(conn.admissionKey);
    conn.clientId = m.clientId;
    return engine.join(conn, m, verdict.grants);
  }
}
