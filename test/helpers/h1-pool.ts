import type { BackendDispatchHandler, BackendDispatchOptions, RawFields } from '../../src/upstream/dispatcher.js';
import { H1Pool, type H1PoolOptions } from '../../src/upstream/h1/pool.js';

/** The HTTP/1.1 backend client (src/upstream/h1/) driven directly: a recording handler and a pool. */

/** What one dispatch saw, in the order of the callbacks. */
export interface Outcome {
  connected: boolean;
  status: number;
  /** Interim (1xx) heads seen before the final one. */
  interim: number;
  fields: Record<string, string>;
  body: string;
  trailers: RawFields | null;
  error: (Error & { code?: string }) | null;
}

/** A handler that records everything; `pauseMs` pauses once after the first body chunk. */
export class Recording implements BackendDispatchHandler {
  readonly outcome: Outcome = { connected: false, status: 0, interim: 0, fields: {}, body: '', trailers: null, error: null };
  readonly done: Promise<Outcome>;
  abort: ((err?: Error) => void) | null = null;
  private finish!: (o: Outcome) => void;
  private readonly pauseMs: number;
  private paused = false;
  constructor(pauseMs = 0) {
    this.pauseMs = pauseMs;
    this.done = new Promise((resolve) => (this.finish = resolve));
  }
  onConnect(abort: (err?: Error) => void): void {
    this.outcome.connected = true;
    this.abort = abort;
  }
  onHeaders(status: number, raw: RawFields, resume: () => void): boolean {
    if (status >= 200) this.outcome.status = status;
    else this.outcome.interim++;
    for (let i = 0; i < raw.length; i += 2) this.outcome.fields[String(raw[i])] = String(raw[i + 1]);
    this.resume = resume;
    return true;
  }
  private resume: (() => void) | null = null;
  onData(chunk: Buffer): boolean {
    this.outcome.body += chunk.toString('latin1');
    if (this.pauseMs > 0 && !this.paused) {
      this.paused = true;
      setTimeout(() => this.resume?.(), this.pauseMs);
      return false;
    }
    return true;
  }
  onComplete(trailers: RawFields | null): void {
    this.outcome.trailers = trailers as RawFields | null;
    this.finish(this.outcome);
  }
  onError(err: Error): void {
    this.outcome.error = err;
    this.finish(this.outcome);
  }
}

export function poolFor(port: number, options: Partial<H1PoolOptions> = {}): H1Pool {
  return new H1Pool({
    origin: `http://127.0.0.1:${port}`, hostname: '127.0.0.1', port, tls: null,
    connectTimeoutMs: 2000, headersTimeoutMs: 5000, bodyTimeoutMs: 5000, keepAliveTimeoutMs: 60_000, keepAliveMaxTimeoutMs: 600_000, maxHeaderBytes: 16 * 1024,
    ...options,
  });
}

export function send(pool: H1Pool, options: Partial<BackendDispatchOptions> = {}, handler = new Recording()): Promise<Outcome> & { handler: Recording } {
  pool.dispatch({ path: '/', method: 'GET', headers: [], ...options } as BackendDispatchOptions, handler);
  return Object.assign(handler.done, { handler });
}
