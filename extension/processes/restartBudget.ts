// How many unexpected exits of a supervised process are forgiven: `limit` restarts within a sliding `windowMs`
// (the TypeScript extension's tsserver supervision uses the same idea).
export class RestartBudget {
  private readonly restarts: number[] = [];

  constructor(
    readonly limit = 3,
    readonly windowMs = 3 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a restart if the budget allows one; false when it is spent. */
  tryConsume(): boolean {
    const t = this.now();
    while (this.restarts.length > 0 && t - this.restarts[0]! > this.windowMs) this.restarts.shift();
    if (this.restarts.length >= this.limit) return false;
    this.restarts.push(t);
    return true;
  }

  reset(): void {
    this.restarts.length = 0;
  }
}
