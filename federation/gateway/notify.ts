// How a gateway learns that another one changed the federation: a NOTIFY on the session's channel
// (sent in the same transaction as a commit, an opened round or an upload), and, should notifications
// be lost (while the session reconnects), a poll every `pollMs`: no change goes unnoticed longer than that.
import type { GatewaySession } from './session';

export class ChangeFeed {
  private readonly listeners: (() => void)[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(session: GatewaySession, pollMs: number) {
    session.on('notification', () => this.fire());
    // After a reconnect, whatever was missed meanwhile is read again.
    session.on('up', () => this.fire());
    this.timer = setInterval(() => this.fire(), pollMs);
    this.timer.unref();
  }

  on(listener: () => void): void {
    this.listeners.push(listener);
  }

  fire(): void {
    for (const l of this.listeners) l();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
