import type { Agent } from 'undici';
import { systemClock, systemRandom, type Clock, type Random, type Timer } from '../clock.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import { loadUndici } from '../undici-loader.js';
import { backendsFromHealthEntries, ConsulAnswerError, setKey } from './consul-entries.js';
import type { DiscoveredBackend, DiscoverySink, DiscoverySource } from './source.js';

/** Where and what to watch in Consul (the config's `discover: { consul: … }`). */
export interface ConsulOptions {
  /** Service name, as registered in Consul. */
  readonly service: string;
  /** Consul HTTP API, default `http://127.0.0.1:8500` (the local agent). */
  readonly address?: string | undefined;
  /** ACL token, sent as `X-Consul-Token`. */
  readonly token?: string | undefined;
  /** Datacenter to ask about; default the agent's own. */
  readonly datacenter?: string | undefined;
  /** Only instances whose checks all pass (default true); false keeps warning and critical ones. */
  readonly passingOnly?: boolean | undefined;
  /** Scheme of the backend URLs (default http): Consul does not say whether an instance serves TLS. */
  readonly scheme?: 'http' | 'https' | undefined;
}

export interface ConsulDeps {
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Jitter of the retry backoff; default Math.random. */
  readonly random?: Random;
  // Tuning, for tests; the defaults are in consulDefaults.
  readonly waitMs?: number;
  readonly changeIntervalMs?: number;
  readonly minIntervalMs?: number;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  readonly timeoutMarginMs?: number;
}

export const consulDefaults = {
  address: 'http://127.0.0.1:8500',
  /** How long one blocking query may be held by Consul (Consul's own default is 5 min, its max 10). */
  waitMs: 60_000,
  /** After a change, at most one query this often: the index also moves with unrelated churn. */
  changeIntervalMs: 1000,
  /** Between any two queries, so a server that answers at once cannot make us spin. */
  minIntervalMs: 100,
  /** Retry backoff after an error: base doubled per failure, up to max, with jitter. */
  backoffBaseMs: 1000,
  backoffMaxMs: 30_000,
  /** Consul adds up to wait/16 of jitter; past that and this margin, the query counts as lost. */
  timeoutMarginMs: 5000,
} as const;

type Tuning = { readonly [K in Exclude<keyof typeof consulDefaults, 'address'>]: number };

interface Answer {
  readonly index: number | null;
  readonly backends: DiscoveredBackend[];
}

/**
 * Watches one Consul service through health-service blocking queries
 * (`GET /v1/health/service/NAME?index=I&wait=W`), reporting the set whenever it changes.
 * Follows Consul's blocking-query rules: reset the index when it goes backwards, rate-limit
 * the loop, back off on errors; the last good set stays in force while Consul is away.
 */
export class ConsulSource implements DiscoverySource {
  readonly kind = 'consul';
  readonly description: string;
  private readonly options: ConsulOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly tuning: Tuning;
  private readonly base: URL;
  /** Made by the first query, with undici loaded then (see loadUndici). */
  private agent: Agent | null = null;
  private index = 0;
  /** The set last reported; null before the first one and after an error (recovery reports again). */
  private lastKey: string | null = null;
  private failures = 0;
  private stopped = false;
  private running: Promise<void> | null = null;
  private inFlight: AbortController | null = null;
  private sleeping: { readonly timer: Timer; readonly wake: () => void } | null = null;

  constructor(options: ConsulOptions, deps: ConsulDeps) {
    this.options = options;
    this.logger = deps.logger;
    this.clock = deps.clock ?? systemClock;
    this.random = deps.random ?? systemRandom;
    const d = consulDefaults;
    this.tuning = {
      waitMs: deps.waitMs ?? d.waitMs,
      changeIntervalMs: deps.changeIntervalMs ?? d.changeIntervalMs,
      minIntervalMs: deps.minIntervalMs ?? d.minIntervalMs,
      backoffBaseMs: deps.backoffBaseMs ?? d.backoffBaseMs,
      backoffMaxMs: deps.backoffMaxMs ?? d.backoffMaxMs,
      timeoutMarginMs: deps.timeoutMarginMs ?? d.timeoutMarginMs,
    };
    const address = options.address ?? consulDefaults.address;
    let base: URL;
    try {
      base = new URL(address);
    } catch {
      throw new ConfigError(`consul address "${address}" is not a URL (e.g. http://127.0.0.1:8500)`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new ConfigError(`consul address "${address}" must be http:// or https://`);
    if (options.service === '') throw new ConfigError('consul service name is empty');
    this.base = base;
    const dc = options.datacenter === undefined ? '' : `?dc=${encodeURIComponent(options.datacenter)}`;
    this.description = `consul${base.protocol === 'https:' ? '+https' : ''}://${base.host}/${encodeURIComponent(options.service)}${dc}`;
  }

  start(sink: DiscoverySink): void {
    if (this.running !== null) throw new Error(`${this.description}: already started`);
    this.running = this.loop(sink);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.inFlight?.abort();
    if (this.sleeping !== null) {
      this.clock.clearTimeout(this.sleeping.timer);
      this.sleeping.wake();
    }
    await this.running;
    await this.agent?.destroy();
  }

  private async loop(sink: DiscoverySink): Promise<void> {
    while (!this.stopped) {
      const startedMs = this.clock.now();
      let delayMs: number;
      try {
        const answer = await this.query();
        if (this.stopped) break;
        const changed = this.advance(answer.index);
        this.failures = 0;
        const key = setKey(answer.backends);
        if (key !== this.lastKey) {
          this.lastKey = key;
          this.logger.debug({ source: this.description, backends: answer.backends.length, index: this.index }, `${this.description}: ${answer.backends.length} backends`);
          deliver(() => sink.update(answer.backends), this.logger);
        }
        // Index 0 makes the next query answer at once, so it is paced like a change.
        const paceMs = changed || this.index === 0 ? this.tuning.changeIntervalMs : this.tuning.minIntervalMs;
        delayMs = Math.max(0, paceMs - (this.clock.now() - startedMs));
      } catch (err) {
        if (this.stopped) break;
        this.failures++;
        this.lastKey = null;
        this.index = 0;
        deliver(() => sink.error(err as Error), this.logger);
        delayMs = this.backoffMs();
      }
      await this.sleep(delayMs);
    }
  }

  /** Takes the answer's index; returns whether it moved. Backwards or not a number: start over from 0. */
  private advance(index: number | null): boolean {
    const previous = this.index;
    this.index = index === null || index < previous ? 0 : index;
    return this.index !== previous;
  }

  /** Full jitter over an exponential ceiling: spreads replicas that all lost Consul at once. */
  private backoffMs(): number {
    const ceiling = Math.min(this.tuning.backoffMaxMs, this.tuning.backoffBaseMs * 2 ** Math.min(this.failures - 1, 20));
    return ceiling / 2 + (this.random.next() * ceiling) / 2;
  }

  private async query(): Promise<Answer> {
    const url = new URL(`/v1/health/service/${encodeURIComponent(this.options.service)}`, this.base);
    const { waitMs, timeoutMarginMs } = this.tuning;
    // Index 0 asks for the current state without blocking.
    if (this.index > 0) {
      url.searchParams.set('index', String(this.index));
      url.searchParams.set('wait', waitMs % 1000 === 0 ? `${waitMs / 1000}s` : `${waitMs}ms`);
    }
    if (this.options.passingOnly !== false) url.searchParams.set('passing', 'true');
    if (this.options.datacenter !== undefined) url.searchParams.set('dc', this.options.datacenter);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.token !== undefined) headers['x-consul-token'] = this.options.token;
    const controller = new AbortController();
    this.inFlight = controller;
    const limitMs = (this.index > 0 ? waitMs + waitMs / 16 : 0) + timeoutMarginMs;
    let timedOut = false;
    const timer = this.clock.setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, limitMs);
    try {
      const { Agent, request } = await loadUndici();
      this.agent ??= new Agent({ headersTimeout: 0, bodyTimeout: 0, connectTimeout: 10_000 });
      const response = await request(url, { dispatcher: this.agent, signal: controller.signal, headers });
      const text = await response.body.text();
      if (response.statusCode !== 200) throw new ConsulAnswerError(`consul: ${url.pathname} answered ${response.statusCode}: ${text.trim().split('\n')[0]?.slice(0, 200) ?? ''}`);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new ConsulAnswerError(`consul: ${url.pathname} answered something that is not JSON`);
      }
      const backends = backendsFromHealthEntries(body, this.options.scheme ?? 'http');
      // Consul hides what the token may not read, and says so in this header: with nothing
      // left, that is a token problem, not a service scaled to zero.
      if (backends.length === 0 && response.headers['x-consul-results-filtered-by-acls'] === 'true') {
        throw new ConsulAnswerError(`consul: the ACL token may not read service "${this.options.service}" (every result was filtered)`);
      }
      const index = Number(response.headers['x-consul-index']);
      return { index: Number.isSafeInteger(index) && index >= 0 ? index : null, backends };
    } catch (err) {
      if (timedOut) throw new Error(`consul: no answer from ${url.origin} within ${Math.round(limitMs)} ms`, { cause: err });
      if (err instanceof ConsulAnswerError) throw err;
      throw new Error(`consul: ${url.origin} unreachable: ${(err as Error).message}`, { cause: err });
    } finally {
      this.clock.clearTimeout(timer);
      this.inFlight = null;
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        this.sleeping = null;
        resolve();
      };
      this.sleeping = { timer: this.clock.setTimeout(wake, ms), wake };
    });
  }
}

/** A sink that throws must not end the watch. */
function deliver(call: () => void, logger: Logger): void {
  try {
    call();
  } catch (err) {
    logger.error({ error: (err as Error).message }, `discovery sink failed: ${(err as Error).message}`);
  }
}
