// Sockets that have not said HELLO yet: each is closed at its hello deadline (from its TCP accept, so
// a socket that never upgrades to WebSocket goes too), and they are capped per remote address and in
// all. Beyond a cap the oldest *silent* socket (one that sent nothing) is closed, not the new one: an
// honest client says HELLO within milliseconds of connecting, so a flood of silent sockets (from one
// address, or many) ages out its own sockets first and cannot keep a token holder from connecting.
// Authenticated sessions are never counted here, so no number of silent sockets displaces them.

export interface AdmissionLimits {
  /** A socket that has not said HELLO by then is closed. */
  readonly helloTimeoutMs: number;
  /** Sockets without an accepted HELLO, all addresses together. */
  readonly maxPending: number;
  /** Sockets without an accepted HELLO from one remote address. */
  readonly maxPendingPerAddress: number;
}

/** Why a pending socket is closed: its deadline passed, or a cap made room for a newer one. */
export type ClosedBecause = 'deadline' | 'evicted';

interface Entry {
  readonly address: string;
  /** It sent its HELLO (being verified): no longer silent, so never evicted. */
  spoke: boolean;
  timer: NodeJS.Timeout | null;
  close: (because: ClosedBecause, message: string) => void;
}

export class Admission<K> {
  /** Insertion order is age: the first silent entry is the oldest. */
  private readonly pending = new Map<K, Entry>();
  private readonly perAddress = new Map<string, number>();

  constructor(private readonly limits: AdmissionLimits) {}

  get size(): number {
    return this.pending.size;
  }

  has(key: K): boolean {
    return this.pending.has(key);
  }

  /** A new socket: its deadline starts; caps it exceeds close older silent sockets. */
  accept(key: K, address: string, close: Entry['close']): void {
    const entry: Entry = { address, spoke: false, timer: null, close };
    entry.timer = setTimeout(() => this.drop(key, 'deadline', `no hello within ${this.limits.helloTimeoutMs} ms`), this.limits.helloTimeoutMs);
    entry.timer.unref();
    this.pending.set(key, entry);
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    if ((this.perAddress.get(address) ?? 0) > this.limits.maxPendingPerAddress) {
      this.evictOldest(address, `more than ${this.limits.maxPendingPerAddress} connections without a hello from ${address}: the oldest silent one is closed`);
    }
    if (this.pending.size > this.limits.maxPending)
      this.evictOldest(null, `more than ${this.limits.maxPending} connections without a hello: the oldest silent one is closed`);
  }

  /** How the socket is closed from now on (its WebSocket, once upgraded). */
  setClose(key: K, close: Entry['close']): void {
    const e = this.pending.get(key);
    if (e) e.close = close;
  }

  /** It sent its HELLO: not silent any more (its verification decides; the deadline no longer applies). */
  spoke(key: K): void {
    const e = this.pending.get(key);
    if (!e) return;
    e.spoke = true;
    if (e.timer) clearTimeout(e.timer);
    e.timer = null;
  }

  /** Admitted, refused or closed: no longer pending. */
  settle(key: K): void {
    const e = this.pending.get(key);
    if (!e) return;
    if (e.timer) clearTimeout(e.timer);
    this.pending.delete(key);
    const n = (this.perAddress.get(e.address) ?? 1) - 1;
    if (n > 0) this.perAddress.set(e.address, n);
    else this.perAddress.delete(e.address);
  }

  /** Closes the oldest silent socket (of `address`, or of any): whether there was one. */
  evictOldest(address: string | null, message: string): boolean {
    for (const [key, e] of this.pending) {
      if (e.spoke || (address !== null && e.address !== address)) continue;
      this.drop(key, 'evicted', message);
      return true;
    }
    return false;
  }

  /** Clears every deadline (the server closes). */
  clear(): void {
    for (const e of this.pending.values()) if (e.timer) clearTimeout(e.timer);
    this.pending.clear();
    this.perAddress.clear();
  }

  private drop(key: K, because: ClosedBecause, message: string): void {
    const e = this.pending.get(key);
    if (!e) return;
    this.settle(key);
    e.close(because, message);
  }
}
