import { systemClock, systemRandom, type Clock, type Random, type Timer } from '../clock.js';
import type { Logger } from '../log.js';
import { Backoff, type BackoffPolicy } from './backoff.js';
import {
  ApiConnection,
  explainStatus,
  KubernetesError,
  resolveSettings,
  serviceAccountDir,
  statusMessage,
  type ConnectionSettings,
  type KubernetesOptions,
} from './kubernetes-connection.js';
import { mergeSlices, portSelector, setKey, type EndpointSlice, type PortSelector } from './kubernetes-slices.js';
import { applyWatchLine, ndjsonLines, readList } from './kubernetes-watch.js';
import type { DiscoverySink, DiscoverySource } from './source.js';

export type { KubernetesOptions } from './kubernetes-connection.js';

export interface KubernetesDeps {
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly random?: Random;
  // The rest are test knobs; the defaults suit a real cluster.
  /** Environment for the in-pod defaults (`KUBERNETES_SERVICE_HOST`, `_PORT`). Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Where the service account is mounted. Default `/var/run/secrets/kubernetes.io/serviceaccount`. */
  readonly serviceAccountDir?: string;
  /** Server-side watch timeout before jitter (x1 to x1.5). Default 240 s. */
  readonly watchTimeoutSeconds?: number;
  /** A watch with no event or bookmark for its timeout plus this is dead: re-list. Default 30 s. */
  readonly idleMarginMs?: number;
  /** Retry delay after an error: `initial` doubling up to `max`, jittered down to half. Default 500 ms to 30 s. */
  readonly backoffMs?: BackoffPolicy;
  /** Bound on a list's response (headers, then each body chunk). Default 30 s. */
  readonly requestTimeoutMs?: number;
}

/** How a watch ended: at its timeout, 410 Gone (`expired-at-once`: before any event), or silent. */
type WatchEnd = 'ended' | 'expired' | 'expired-at-once' | 'idle';

/**
 * Backends from a Service's EndpointSlices (issue 13): list, then watch from the list's
 * resourceVersion with bookmarks and a server-side timeout; `410 Gone` lists again. Errors
 * go to the sink and are retried with backoff; the last reported set stays in force.
 */
export class KubernetesSource implements DiscoverySource {
  readonly kind = 'kubernetes';
  readonly description: string;
  private readonly settings: ConnectionSettings;
  private readonly service: string;
  private readonly selector: PortSelector;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly watchTimeoutSeconds: number;
  private readonly idleMarginMs: number;
  private readonly backoff: Backoff;
  private readonly requestTimeoutMs: number;
  private connection: ApiConnection | undefined;
  private sink: DiscoverySink | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** The request in flight, aborted by stop() and by the idle timer. */
  private inFlight: AbortController | undefined;
  private idleTimer: Timer | undefined;
  private idleFired = false;
  private slices = new Map<string, EndpointSlice>();
  /** Where the next watch starts; undefined: list first. */
  private resourceVersion: string | undefined;
  private reportedKey: string | undefined;
  private reportedProblem: string | undefined;
  private failures = 0;

  /** Throws ConfigError when the API server cannot be known or the CA file cannot be read. */
  constructor(options: KubernetesOptions, deps: KubernetesDeps) {
    this.settings = resolveSettings(options, deps.env ?? process.env, deps.serviceAccountDir ?? serviceAccountDir);
    this.service = options.service;
    this.selector = portSelector(options.port);
    this.description = `k8s://${this.settings.namespace}/${options.service}${options.port === undefined ? '' : `:${options.port}`}`;
    this.logger = deps.logger;
    this.clock = deps.clock ?? systemClock;
    this.random = deps.random ?? systemRandom;
    this.backoff = new Backoff(this.clock, this.random, deps.backoffMs ?? { initial: 500, max: 30_000 });
    this.watchTimeoutSeconds = deps.watchTimeoutSeconds ?? 240;
    this.idleMarginMs = deps.idleMarginMs ?? 30_000;
    this.requestTimeoutMs = deps.requestTimeoutMs ?? 30_000;
  }

  start(sink: DiscoverySink): void {
    if (this.sink !== undefined || this.stopped) throw new Error(`${this.description}: start() called twice`);
    this.sink = sink;
    this.connection = new ApiConnection(this.settings, this.requestTimeoutMs);
    this.running = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.inFlight?.abort();
    this.clearIdle();
    this.backoff.cancel();
    await this.running;
    await this.connection?.close();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.resourceVersion === undefined) await this.list();
        const end = await this.watch();
        if (end !== 'ended') this.resourceVersion = undefined;
        // Gone before a single event: the server compacts faster than we list. Wait, don't spin.
        if (end === 'expired-at-once') await this.backoff.wait(this.failures++);
      } catch (err) {
        if (this.stopped) break;
        // Forget what was reported so the first good answer after the error is reported again.
        this.reportedKey = undefined;
        this.tell((sink) => sink.error(err as Error));
        await this.backoff.wait(this.failures++);
      }
    }
  }

  private collectionPath(): string {
    const selector = encodeURIComponent(`kubernetes.io/service-name=${this.service}`);
    return `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(this.settings.namespace)}/endpointslices?labelSelector=${selector}`;
  }

  /** GETs `path`, throwing an error that says what failed and why for anything but `expect`ed statuses. */
  private async get(what: string, path: string, bodyTimeoutMs: number, expect: readonly number[]) {
    const controller = new AbortController();
    this.inFlight = controller;
    let response;
    try {
      response = await (this.connection as ApiConnection).get(path, controller.signal, bodyTimeoutMs);
    } catch (err) {
      if (this.idleFired || this.stopped) throw err;
      throw this.failure(what, err);
    }
    if (!expect.includes(response.statusCode)) {
      const text = await response.body.text().catch(() => '');
      throw new KubernetesError(response.statusCode, explainStatus(response.statusCode, `${what} (${this.settings.origin})`, statusMessage(text), this.settings));
    }
    return response;
  }

  /** `err` with what failed and where in front, unless it already says so. */
  private failure(what: string, err: unknown): Error {
    if (err instanceof KubernetesError || this.stopped) return err as Error;
    return new KubernetesError(undefined, `${what} (${this.settings.origin}): ${(err as Error).message}`, { cause: err });
  }

  private async list(): Promise<void> {
    const what = `listing EndpointSlices of ${this.description}`;
    const response = await this.get(what, this.collectionPath(), this.requestTimeoutMs, [200]);
    let body: unknown;
    try {
      body = await response.body.json();
    } catch (err) {
      throw new KubernetesError(undefined, `${what} (${this.settings.origin}): bad JSON: ${(err as Error).message}`, { cause: err });
    }
    const { slices, version } = readList(body, `${what} (${this.settings.origin})`);
    this.slices = slices;
    this.resourceVersion = version;
    this.failures = 0;
    this.logger.debug({ source: this.description, slices: slices.size, resourceVersion: version }, 'kubernetes discovery listed');
    this.report();
  }

  /** Watches from `resourceVersion` until the server ends the watch, it expires (410) or goes idle. */
  private async watch(): Promise<WatchEnd> {
    const what = `watching EndpointSlices of ${this.description}`;
    const timeoutSeconds = Math.max(1, Math.floor(this.watchTimeoutSeconds * (1 + 0.5 * this.random.next())));
    const path = `${this.collectionPath()}&watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(this.resourceVersion ?? '')}&timeoutSeconds=${timeoutSeconds}`;
    const idleMs = timeoutSeconds * 1000 + this.idleMarginMs;
    const startedAt = this.clock.now();
    let events = 0;
    this.armIdle(idleMs);
    try {
      const response = await this.get(what, path, 0, [200, 410]);
      if (response.statusCode === 410) {
        await response.body.text().catch(() => '');
        return this.expired('410 Gone', 0, startedAt, timeoutSeconds);
      }
      this.failures = 0;
      // After an error, a watch that starts again is news for the sink even when nothing changed.
      if (this.reportedKey === undefined) this.report();
      for await (const line of ndjsonLines(response.body)) {
        this.armIdle(idleMs);
        const step = applyWatchLine(this.slices, line, `${what} (${this.settings.origin})`);
        if (step.kind === 'expired') return this.expired(step.why, events, startedAt, timeoutSeconds);
        events++;
        this.resourceVersion = step.version;
        if (step.kind === 'changed') this.report();
      }
    } catch (err) {
      if (this.idleFired && !this.stopped) {
        this.logger.warn({ source: this.description, idleMs }, 'kubernetes watch silent past its timeout: listing again');
        return 'idle';
      }
      throw this.failure(what, err);
    } finally {
      this.clearIdle();
      this.inFlight = undefined;
    }
    // A watch that the server ends at once, again and again, would spin: count it as an error.
    if (events === 0 && this.atOnce(startedAt, timeoutSeconds)) {
      throw new KubernetesError(undefined, `${what} (${this.settings.origin}): the server ended the watch at once`);
    }
    return 'ended';
  }

  private expired(why: string, events: number, startedAt: number, timeoutSeconds: number): WatchEnd {
    this.logger.debug({ source: this.description, why }, 'kubernetes watch expired: listing again');
    return events === 0 && this.atOnce(startedAt, timeoutSeconds) ? 'expired-at-once' : 'expired';
  }

  /** Whether a watch started at `startedAt` ended too soon to have done anything (client-go's "very short watch"). */
  private atOnce(startedAt: number, timeoutSeconds: number): boolean {
    return this.clock.now() - startedAt < Math.min(1000, timeoutSeconds * 500);
  }

  /** Reports the merged set when it changed; a slice without a usable port reports an error instead. */
  private report(): void {
    const merged = mergeSlices(this.slices.values(), this.selector);
    if (merged.problems.length > 0) {
      const problem = `${this.description}: ${merged.problems.join('; ')}`;
      this.reportedKey = undefined;
      if (problem !== this.reportedProblem) this.tell((sink) => sink.error(new Error(problem)));
      this.reportedProblem = problem;
      return;
    }
    this.reportedProblem = undefined;
    const key = setKey(merged.backends);
    if (key === this.reportedKey) return;
    this.reportedKey = key;
    this.tell((sink) => sink.update(merged.backends));
  }

  /** Calls the sink; its own failure is logged, never taken for the source's (the watch goes on). */
  private tell(call: (sink: DiscoverySink) => void): void {
    if (this.sink === undefined || this.stopped) return;
    try {
      call(this.sink);
    } catch (err) {
      this.logger.error({ source: this.description, err }, 'kubernetes discovery: the sink threw');
    }
  }

  private armIdle(ms: number): void {
    this.clearIdle();
    this.idleFired = false;
    this.idleTimer = this.clock.setTimeout(() => {
      this.idleTimer = undefined;
      this.idleFired = true;
      this.inFlight?.abort();
    }, ms);
  }

  private clearIdle(): void {
    if (this.idleTimer !== undefined) this.clock.clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}
