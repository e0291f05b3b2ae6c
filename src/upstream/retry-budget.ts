/**
 * Envoy's retry budget for one upstream: retries in flight may not exceed
 * max(minRetries, percent% of the requests in flight), so retries cannot multiply the load of an
 * upstream that is already failing. Exchanges count themselves in and out; nothing is allocated.
 */
export class RetryBudget {
  /** Requests of this upstream not yet finished. */
  activeRequests = 0;
  /** Retries scheduled or in flight. */
  activeRetries = 0;
  private readonly minRetries: number;
  private readonly percent: number;

  constructor(minRetries: number, percent: number) {
    this.minRetries = minRetries;
    this.percent = percent;
  }

  /** Retries allowed in flight right now. */
  get capacity(): number {
    return Math.max(this.minRetries, Math.floor((this.activeRequests * this.percent) / 100));
  }

  /** Takes a retry slot; false when the budget is spent. */
  tryAcquire(): boolean {
    if (this.activeRetries >= this.capacity) return false;
    this.activeRetries++;
    return true;
  }

  release(): void {
    this.activeRetries--;
  }
}
