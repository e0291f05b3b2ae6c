import { Agent, request } from 'undici';

/**
 * A small load generator for fault scenarios: `concurrency` undici clients, each sending GETs
 * one after another (keep-alive) until the duration or the count is reached or stop() is called.
 */
export interface LoadOptions {
  readonly url: string;
  readonly concurrency: number;
  /** Stop starting requests after this long. Default: until the count is reached or stop(). */
  readonly durationMs?: number;
  /** Stop after this many requests in total. */
  readonly count?: number;
  /** Headers and body timeout of each request; a request over it counts as an error. Default 5 s. */
  readonly timeoutMs?: number;
  /**
   * Judges each complete response: a string names what is wrong with it (counted in `problems`),
   * null accepts it. Default: nothing is wrong with a complete response.
   */
  readonly check?: (status: number, body: string, headers: Readonly<Record<string, string | string[] | undefined>>) => string | null;
}

export interface LoadReport {
  readonly requests: number;
  /** Complete responses by status code. */
  readonly statuses: Readonly<Record<number, number>>;
  /** Requests that got no complete response, by error code (or message). */
  readonly errors: Readonly<Record<string, number>>;
  /** Complete responses `check` refused: how many, and the first few reasons. */
  readonly problems: number;
  readonly problemSamples: readonly string[];
  /** Errors + problems + complete responses that were not 2xx. */
  readonly failures: number;
  readonly elapsedMs: number;
  /** Latency (request start to body end, or to the error) percentiles of every request. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The same over 2xx responses `check` accepted. */
  readonly okP50Ms: number;
  readonly okP99Ms: number;
  /** Latencies of complete responses, by status code. */
  readonly latenciesByStatus: Readonly<Record<number, readonly number[]>>;
}

/** The q-th percentile (0-100) of unsorted values, nearest rank; NaN for none. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export class Load {
  requests = 0;
  private readonly statuses: Record<number, number> = {};
  private readonly errors: Record<string, number> = {};
  private problems = 0;
  private readonly problemSamples: string[] = [];
  private readonly latencies: number[] = [];
  private readonly okLatencies: number[] = [];
  private readonly latenciesByStatus: Record<number, number[]> = {};
  private stopped = false;
  private readonly started = performance.now();
  private readonly dispatcher: Agent;
  private readonly options: LoadOptions;
  /** Resolves when every client has stopped, with the figures. */
  readonly done: Promise<LoadReport>;

  constructor(options: LoadOptions) {
    this.options = options;
    this.dispatcher = new Agent({ connections: options.concurrency });
    const deadline = options.durationMs === undefined ? Number.POSITIVE_INFINITY : this.started + options.durationMs;
    const clients = Array.from({ length: options.concurrency }, () => this.client(deadline));
    this.done = Promise.all(clients).then(async () => {
      await this.dispatcher.close();
      return this.report();
    });
  }

  /** Complete responses with this status so far. */
  count(status: number): number {
    return this.statuses[status] ?? 0;
  }

  /** Requests that ended in an error so far. */
  get errorCount(): number {
    let n = 0;
    for (const key in this.errors) n += this.errors[key] as number;
    return n;
  }

  /** Stops starting requests; resolves once those in flight are over. */
  stop(): Promise<LoadReport> {
    this.stopped = true;
    return this.done;
  }

  private async client(deadline: number): Promise<void> {
    const { url, count, check } = this.options;
    const timeoutMs = this.options.timeoutMs ?? 5000;
    while (!this.stopped && performance.now() < deadline && (count === undefined || this.requests < count)) {
      this.requests++;
      const began = performance.now();
      try {
        const res = await request(url, { dispatcher: this.dispatcher, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
        const body = await res.body.text();
        const latencyMs = performance.now() - began;
        this.latencies.push(latencyMs);
        this.statuses[res.statusCode] = (this.statuses[res.statusCode] ?? 0) + 1;
        (this.latenciesByStatus[res.statusCode] ??= []).push(latencyMs);
        const problem = check === undefined ? null : check(res.statusCode, body, res.headers);
        if (problem !== null) {
          this.problems++;
          if (this.problemSamples.length < 5) this.problemSamples.push(problem);
        } else if (res.statusCode >= 200 && res.statusCode < 300) {
          this.okLatencies.push(latencyMs);
        }
      } catch (err) {
        this.latencies.push(performance.now() - began);
        const code = (err as { code?: string }).code ?? (err as Error).message;
        this.errors[code] = (this.errors[code] ?? 0) + 1;
      }
    }
  }

  private report(): LoadReport {
    let failures = this.errorCount + this.problems;
    for (const status in this.statuses) if (Number(status) < 200 || Number(status) >= 300) failures += this.statuses[status] as number;
    return {
      requests: this.requests,
      statuses: { ...this.statuses },
      errors: { ...this.errors },
      problems: this.problems,
      problemSamples: [...this.problemSamples],
      failures,
      elapsedMs: performance.now() - this.started,
      p50Ms: percentile(this.latencies, 50),
      p99Ms: percentile(this.latencies, 99),
      okP50Ms: percentile(this.okLatencies, 50),
      okP99Ms: percentile(this.okLatencies, 99),
      latenciesByStatus: this.latenciesByStatus,
    };
  }
}

/** Starts a load in the background; stop() or `done` gives its report. */
export function startLoad(options: LoadOptions): Load {
  return new Load(options);
}

/** Runs a load to its end (options need `durationMs` or `count`). */
export function runLoad(options: LoadOptions): Promise<LoadReport> {
  if (options.durationMs === undefined && options.count === undefined) throw new Error('runLoad needs durationMs or count');
  return new Load(options).done;
}

/** One line of figures for t.diagnostic(). */
export function describeLoad(report: LoadReport): string {
  const ms = (v: number): string => (Number.isNaN(v) ? '-' : v.toFixed(1));
  return (
    `requests ${report.requests} in ${(report.elapsedMs / 1000).toFixed(1)} s, failures ${report.failures}; ` +
    `p50 ${ms(report.p50Ms)} ms, p99 ${ms(report.p99Ms)} ms (2xx: p50 ${ms(report.okP50Ms)} ms, p99 ${ms(report.okP99Ms)} ms); ` +
    `statuses ${JSON.stringify(report.statuses)}; errors ${JSON.stringify(report.errors)}` +
    (report.problems > 0 ? `; problems ${report.problems}: ${report.problemSamples.join(' | ')}` : '')
  );
}
