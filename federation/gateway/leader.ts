// Coordinator election: the gateway whose session holds one PostgreSQL advisory lock commits rounds.
// The lock is the session's: when that gateway dies (kill -9 included) or its connection drops, the
// database releases it and the next gateway to try takes it within `retryMs`. A deposed coordinator
// that still tries to commit is stopped by the commit's own check (the round must advance by one).
import type { GatewaySession } from './session';

/** pg_try_advisory_lock(LOCK_CLASS, COORDINATOR_LOCK): two int4 keys, out of the way of others'. */
export const LOCK_CLASS = 0x66656473;
export const COORDINATOR_LOCK = 1;
export const SCHEMA_LOCK = 2;
export const COMMIT_LOCK = 3;

export class Leadership {
  private held = false;
  private readonly timer: NodeJS.Timeout;
  private trying = false;

  constructor(
    private readonly session: GatewaySession,
    private readonly onChange: () => void,
    retryMs: number,
  ) {
    session.on('down', () => this.set(false));
    session.on('up', () => void this.tryTake());
    this.timer = setInterval(() => void this.tryTake(), retryMs);
    this.timer.unref();
    // The session may be up already.
    void this.tryTake();
  }

  get coordinator(): boolean {
    return this.held;
  }

  private set(held: boolean): void {
    if (held === this.held) return;
    this.held = held;
    this.onChange();
  }

  private async tryTake(): Promise<void> {
    const client = this.session.connection;
    if (this.held || this.trying || !client) return;
    this.trying = true;
    try {
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [LOCK_CLASS, COORDINATOR_LOCK]);
      // The lock belongs to the connection it was taken on: only count it while that one lives.
      if (rows[0].ok && this.session.connection === client) this.set(true);
    } catch {
      // The session is dropping; it says so and reconnects.
    } finally {
      this.trying = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
