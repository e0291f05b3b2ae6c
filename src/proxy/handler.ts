import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { writeAccessLog } from '../access-log.js';
import { ErrorCodes, httpErrorFor, type ErrorCode } from '../errors.js';
import { attemptChannel, requestChannel, type AttemptEvent, type RequestEvent } from '../events.js';
import type { Logger } from '../log.js';
import { hostHeader } from '../router.js';
import type { Snapshot } from '../runtime.js';
import type { DownstreamLimits } from '../server/limits.js';
import type { Timer } from '../clock.js';
import { DownReason, type Backend } from '../upstream/backend.js';
import type { QueueWaiter } from '../upstream/queue.js';
import type { Upstream } from '../upstream/upstream.js';
import { requestHeadersForUpstream, responseHeadersForClient, type ForwardingOptions } from './headers.js';
import { decodedTarget, normaliseTarget } from './normalise-path.js';
import { BodyTooLargeError, RequestBody } from './request-body.js';
import type { TrustedProxies } from './trusted.js';
import { classify, clientAddress, declaredBodyLength, errorCodeByKind, originFormTarget, RelayRefusedError, versionRejection } from './request-info.js';
import { cookieValue, hashKeyOf } from './request-keys.js';
import { plural } from '../units.js';
import { backoffDelayMs, hasIdempotencyKey, isIdempotent, isRetryable, type FailureKind } from './retry.js';

/** What the handler needs from the listener it serves. */
export interface ProxyContext {
  /** Where the current snapshot (router and upstreams) is read from, once per request. */
  readonly runtime: { readonly snapshot: Snapshot };
  readonly logger: Logger;
  /** Where access-log lines go; null when the access log is off. */
  accessLog: Logger | null;
  /** Peers whose forwarding headers are believed (the listener's trustedProxies); null: none. */
  readonly trusted: TrustedProxies | null;
  /** The upstream's forwarding options with this listener's trusted proxies, built once per upstream. */
  readonly forwarding: WeakMap<Upstream, ForwardingOptions>;
  /** Client-facing limits of the listener (body size here; the rest are the listener's). */
  readonly limits: DownstreamLimits;
  /** Our entry in the Via field of responses, e.g. `1.1 switchyard`. */
  readonly responseVia: string;
  /** `http` or `https`: the scheme clients used, for X-Forwarded-Proto. */
  readonly proto: string;
  /** Responses not yet closed; the listener waits for 0 on shutdown. */
  active: number;
  /** Set when shutting down: responses ask clients to close their connections. */
  closing: boolean;
  /** Called whenever `active` drops, so shutdown can notice 0. */
  onIdle: (() => void) | null;
}

const kExchange = Symbol('switchyard.exchange');
interface ResponseWithExchange extends ServerResponse {
  [kExchange]?: Exchange | null;
}

/** Header rewriting for requests from this listener to this upstream (cached: no per-request object). */
function forwardingFor(ctx: ProxyContext, upstream: Upstream): ForwardingOptions {
  let options = ctx.forwarding.get(upstream);
  if (options === undefined) {
    options = { ...upstream.forwarding, trusted: ctx.trusted };
    ctx.forwarding.set(upstream, options);
  }
  return options;
}

/** Entry point for every proxied request. */
export function handleRequest(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse): void {
  const requested = req.url === undefined ? null : originFormTarget(req.url);
  const keepAmbiguous = ctx.limits.ambiguousPaths === 'keep';
  // Routing and the backend read one normal path (issue 9); a target without one gets 400.
  const target = requested === null ? null : normaliseTarget(requested, keepAmbiguous);
  ctx.active++;
  const router = ctx.runtime.snapshot.router;
  const upstream = target === null ? null : router.match(req.rawHeaders, target);
  let refused = target === null;
  if (keepAmbiguous && target !== null) {
    // A backend may decode the kept forms: read that way, the path must stay under the root and the route.
    const decoded = decodedTarget(target);
    refused = decoded === null || (decoded !== target && router.match(req.rawHeaders, decoded) !== upstream);
  }
  const exchange = new Exchange(ctx, upstream, req, res, target ?? requested ?? '/');
  const rejection = refused ? ErrorCodes.badRequest : versionRejection(req);
  try {
    if (rejection !== null) exchange.fail(rejection);
    else if (upstream === null) exchange.fail(ErrorCodes.noRoute);
    else exchange.start();
  } catch (err) {
    exchange.internalFailure(err);
  }
}

function onResponseClose(this: ResponseWithExchange): void {
  this[kExchange]?.onResponseClose();
}

function onResponseDrain(this: ResponseWithExchange): void {
  this[kExchange]?.onClientDrain();
}

function ignoreError(): void {}

/**
 * Collects a small request body, then hands it to the exchange. Its closures live here, not in
 * Exchange.start(), so requests without a body allocate no closure context.
 */
function readWholeBody(req: IncomingMessage, exchange: Exchange): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    try {
      exchange.onBodyRead(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    } catch (err) {
      exchange.internalFailure(err);
    }
  });
  req.on('error', ignoreError);
}

function onRetryTimer(exchange: Exchange): void {
  try {
    exchange.onRetryTimer();
  } catch (err) {
    exchange.internalFailure(err);
  }
}

/** Between the links of one Link field (RFC 8288 section 3): a comma before the next `<`. */
const linkListSeparator = /\s*,\s*(?=<)/;

/** Plans of Exchange.planRetry. */
const retryNone = 0;
const retrySame = 1;
const retryNext = 2;

/** Aborts a response whose status is retried; onError then runs the planned retry. */
const statusRetryError = new Error('the response status is listed in retryStatuses');

/**
 * One client request and its attempts. It is also the undici dispatch handler of each attempt
 * (attempts are strictly sequential), so a request costs one object, not one per callback.
 */
class Exchange implements Dispatcher.DispatchHandler, QueueWaiter {
  private readonly ctx: ProxyContext;
  /** The route's upstream, from the snapshot current when the request arrived; null: no route. */
  private readonly upstream: Upstream;
  private readonly req: IncomingMessage;
  private readonly res: ResponseWithExchange;
  private readonly target: string;
  private readonly method: string;
  readonly clientIp: string;
  private headers: string[] | null = null;
  private body: RequestBody | null = null;
  /** A small request body read whole before the first attempt. */
  private wholeBody: Buffer | null = null;
  private excluded: Set<Backend> | undefined = undefined;
  private hashKeyValue: string | undefined = undefined;
  private stickyIdValue: string | undefined = undefined;
  private stickyIdRead = false;

  private backend: Backend | null = null;
  private backendsTried = 0;
  private retriesOnBackend = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  /** Counted in the upstream's active requests; holds one of its retry-budget slots. */
  private counted = false;
  private holdsRetry = false;
  /** Arrival at start(), read only when the upstream has a tryDuration. */
  private arrivalMs = 0;
  /** A retry planned in onHeaders for a listed status, run by the onError of the abort. */
  private plannedRetry = retryNone;
  private nextBackend: Backend | null = null;
  /** Why planRetry said no, and the error to answer with. */
  private stopCode: ErrorCode = ErrorCodes.noBackend;
  private stopWhy = '';
  /** Set while waiting in the upstream's queue for a backend slot. */
  queueTimer: Timer | null = null;
  /** Status of the current attempt's response, 0 until its headers arrive. */
  private attemptStatus = 0;
  /** Attempt start, and time to its response headers (-1 until they arrive). */
  private attemptStartMs = 0;
  private latencyMs = -1;
  private attempts = 0;
  /** Request arrival, taken only when someone listens for request events; -1 otherwise. */
  private readonly startMs: number;
  private bytesSent = 0;

  // State of the current attempt.
  private attemptActive = false;
  private connected = false;
  private abortAttempt: ((err?: Error) => void) | null = null;
  private resumeUpstream: (() => void) | null = null;
  private responseStarted = false;
  /**
   * The response head, held until the first body byte or the end: Node puts a head on the wire
   * only then anyway, and until it is there a failed attempt can still be answered 502.
   */
  private headStatus = 0;
  private headText = '';
  private headFields: string[] | null = null;
  /** A thrown error of our own code (never the backend's fault); null: none. */
  private internalError: Error | null = null;

  private clientGone = false;
  private done = false;

  constructor(ctx: ProxyContext, upstream: Upstream | null, req: IncomingMessage, res: ServerResponse, target: string) {
    this.ctx = ctx;
    // Only a refused request has no upstream, and it never reads one.
    this.upstream = upstream as Upstream;
    this.startMs = requestChannel.hasSubscribers || ctx.accessLog !== null ? performance.now() : -1;
    this.req = req;
    this.res = res as ResponseWithExchange;
    this.target = target;
    this.method = req.method ?? 'GET';
    this.clientIp = clientAddress(req);
    this.res[kExchange] = this;
    res.on('close', onResponseClose);
  }

  start(): void {
    const ctx = this.ctx;
    const req = this.req;
    const upstream = this.upstream;
    upstream.retryBudget.activeRequests++;
    this.counted = true;
    if (upstream.retry.tryDurationMs > 0) this.arrivalMs = performance.now();
    this.headers = requestHeadersForUpstream(req.rawHeaders, this.clientIp, ctx.proto, req.httpVersion, forwardingFor(ctx, upstream));
    const length = declaredBodyLength(req);
    const maxBodyBytes = ctx.limits.maxBodyBytes;
    if (maxBodyBytes > 0 && length > maxBodyBytes) {
      // Refused before a byte of the body is read; fail() closes the connection after the 413.
      this.fail(ErrorCodes.bodyTooLarge);
      return;
    }
    const bufferBytes = upstream.retry.replayBufferBytes;
    if (length > 0 && length <= bufferBytes) {
      // A small body is read whole first, as nginx does: the backend gets head and body in one
      // write, and any attempt can send it again.
      readWholeBody(req, this);
      return;
    }
    // A larger body streams; only an idempotent (or Idempotency-Key) request can be replayed
    // once its body has left, so only then are its first bytes kept.
    if (length !== 0) this.body = new RequestBody(req, isIdempotent(this.method) || hasIdempotencyKey(req.rawHeaders) ? bufferBytes : 0, maxBodyBytes);
    this.pickAndDispatch();
  }

  onBodyRead(body: Buffer): void {
    if (this.done || this.clientGone) return;
    this.wholeBody = body;
    this.pickAndDispatch();
  }

  private pickAndDispatch(): void {
    const backend = this.upstream.balancer.pick(this);
    if (backend === undefined) {
      // Every backend that is up may be merely full: wait for a slot if the upstream has a queue.
      const queue = this.upstream.queue;
      if (queue === null || !queue.enter(this)) this.fail(ErrorCodes.noBackend);
      return;
    }
    this.onQueueSlot(backend);
  }

  /** The first attempt's backend, picked at once or after a wait in the queue. */
  onQueueSlot(backend: Backend): void {
    this.backend = backend;
    this.backendsTried++;
    this.retriesOnBackend = 0;
    this.dispatch();
  }

  onQueueTimeout(): void {
    this.fail(ErrorCodes.noBackend);
  }

  // PickContext, read by balancers. Keys are computed on first read: only some balancers ask.
  get exclude(): ReadonlySet<Backend> | undefined {
    return this.excluded;
  }

  get hashKey(): string | undefined {
    const spec = this.upstream.hashKey;
    if (spec === null) return undefined;
    return (this.hashKeyValue ??= hashKeyOf(spec, this.req.rawHeaders, this.target, this.clientIp));
  }

  get stickyId(): string | undefined {
    const sticky = this.upstream.sticky;
    if (sticky === null) return undefined;
    if (!this.stickyIdRead) {
      this.stickyIdRead = true;
      this.stickyIdValue = cookieValue(this.req.rawHeaders, sticky.cookieName);
    }
    return this.stickyIdValue;
  }

  private dispatch(): void {
    const backend = this.backend as Backend;
    this.attemptActive = true;
    this.connected = false;
    this.abortAttempt = null;
    this.responseStarted = false;
    this.headFields = null;
    backend.inFlight++;
    backend.requestsTotal++;
    this.attempts++;
    const balancer = this.upstream.balancer;
    if (balancer.onAttemptStart !== undefined) balancer.onAttemptStart(backend);
    this.attemptStartMs = performance.now();
    backend.pool.dispatch(
      {
        path: backend.basePath === '' ? this.target : backend.basePath + this.target,
        method: this.method,
        headers: this.headers,
        // undici streams any async iterable; its types only list Readable.
        body: this.wholeBody ?? (this.body as unknown as Readable | null),
        headersTimeout: this.upstream.retry.perTryTimeoutMs > 0 ? Math.min(this.upstream.retry.perTryTimeoutMs, backend.poolOptions.headersTimeoutMs) : null,
      },
      this,
    );
  }

  /** `err`: why a failed attempt failed; client hang-ups end attempts as not failed. */
  private endAttempt(failed: boolean, err?: Error): void {
    if (!this.attemptActive) return;
    this.attemptActive = false;

    const backend = this.backend as Backend;
    const upstream = this.upstream;
    backend.inFlight--;
    if (failed) backend.failuresTotal++;
    const balancer = upstream.balancer;
    if (balancer.onAttemptEnd !== undefined) {
      const latencyMs = this.responseStarted && this.latencyMs >= 0 ? this.latencyMs : performance.now() - this.attemptStartMs;
      balancer.onAttemptEnd(backend, failed, latencyMs);
    }
    const outlier = upstream.outlier;
    if (outlier !== null && !this.clientGone && this.internalError === null) {
      if (!failed) {
        if (this.responseStarted) outlier.onAttempt(backend, 'response', this.attemptStatus);
      } else if (err === statusRetryError) {
        // A listed status discarded for a retry: the backend did answer.
        outlier.onAttempt(backend, 'response', this.attemptStatus);
      } else {
        const kind = this.responseStarted ? 'reset' : classify(err as Error, this.connected);
        // One request's repeated failures on one backend after it was sent count once: outlier
        // detection looks for failures across different requests (issue 9, "query of death").
        if (kind !== 'invalid' && kind !== 'status' && (kind === 'connect' || this.retriesOnBackend === 0)) outlier.onAttempt(backend, kind, 0);
      }
    }
    const queue = upstream.queue;
    if (queue !== null && queue.length !== 0 && backend.inFlight < backend.maxInFlight) queue.wake();
  }

  /** Publishes the attempt that just ended, when someone listens. */
  private attemptDone(outcome: string, retried: boolean): void {
    if (!attemptChannel.hasSubscribers) return;
    const event: AttemptEvent = {
      backend: this.backend as Backend,
      method: this.method,
      outcome,
      status: outcome === 'response' ? this.res.statusCode : 0,
      durationMs: performance.now() - this.attemptStartMs,
      retried,
    };
    attemptChannel.publish(event);
  }

  // ---- undici dispatch handler -------------------------------------------------------------

  onConnect(abort: (err?: Error) => void): void {
    this.connected = true;
    this.abortAttempt = abort;
    if (this.clientGone) abort();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.clientGone) return false;
    if (statusCode < 200) {
      // Interim responses (RFC 9110 section 15.2): 103 Early Hints are passed on, the rest dropped.
      if (statusCode === 103) this.relayEarlyHints(rawHeaders);
      return true;
    }
    try {
      return this.onFinalHeaders(statusCode, rawHeaders, resume, statusText);
    } catch (err) {
      this.internalFailure(err);
      return false;
    }
  }

  /**
   * 103 Early Hints with their Link fields, to HTTP/1.1 clients only (RFC 9110 section 15.2: no
   * 1xx to HTTP/1.0) and only before the final head. Node checks each Link value; one it refuses
   * is dropped, as hints are optional.
   */
  private relayEarlyHints(rawHeaders: Buffer[]): void {
    if (this.req.httpVersionMinor === 0 || this.res.headersSent) return;
    const links: string[] = [];
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i] as Buffer;
      // Node checks one link per value: a field listing several is split at each `, <`.
      if (name.length === 4 && name.toString('latin1').toLowerCase() === 'link') links.push(...(rawHeaders[i + 1] as Buffer).toString('latin1').split(linkListSeparator));
    }
    if (links.length === 0) return;
    try {
      this.res.writeEarlyHints({ link: links });
    } catch {
      // A malformed Link value: the final response still comes.
    }
  }

  private onFinalHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    this.responseStarted = true;
    this.resumeUpstream = resume;
    const nowMs = performance.now();
    const latencyMs = nowMs - this.attemptStartMs;
    this.latencyMs = latencyMs;
    this.attemptStatus = statusCode;
    const backend = this.backend as Backend;
    backend.latency.record(latencyMs);
    backend.recentLatency.record(latencyMs, nowMs);
    const statusClass = (statusCode / 100) | 0;
    if (statusClass >= 1 && statusClass <= 5) backend.responsesByClass[statusClass] = (backend.responsesByClass[statusClass] as number) + 1;
    const retryStatuses = this.upstream.retry.retryStatuses;
    if (retryStatuses.length !== 0 && retryStatuses.includes(statusCode) && this.abortAttempt !== null && this.mayRetry('status')) {
      // Discard the response only when a retry will happen; otherwise it is relayed as it is.
      const plan = this.planRetry('status');
      if (plan !== retryNone) {
        this.responseStarted = false;
        this.plannedRetry = plan;
        this.abortAttempt(statusRetryError);
        return false;
      }
    }
    // No retry once a response has begun: the replay buffer can go.
    if (this.body !== null) this.body.release();
    const headers = responseHeadersForClient(rawHeaders, this.ctx.responseVia, this.upstream.forwarding.rewriteLocation ? this.backend : null, this.req.rawHeaders, this.ctx.proto);
    const sticky = this.upstream.sticky;
    if (sticky !== null) {
      // (Re)pin the client when its cookie names no backend or another one.
      const cookie = sticky.setCookieFor(this.backend as Backend, this.stickyId);
      if (cookie !== undefined) headers.push('set-cookie', cookie);
    }
    this.headStatus = statusCode;
    this.headText = statusText;
    this.headFields = headers;
    return true;
  }

  /**
   * Hands the held response head to Node. False when Node refuses the backend's status or a
   * field: the attempt is then aborted as a protocol error, and nothing has reached the client.
   */
  private writeHead(): boolean {
    const headers = this.headFields;
    if (headers === null) return true;
    this.headFields = null;
    const res = this.res;
    if (this.ctx.closing) res.shouldKeepAlive = false;
    try {
      res.writeHead(this.headStatus, this.headText === '' ? undefined : this.headText, headers);
    } catch (err) {
      this.responseStarted = false;
      this.abortAttempt?.(new RelayRefusedError(err as Error));
      return false;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.clientGone) return false;
    if (this.headFields !== null && !this.writeHead()) return false;
    this.bytesSent += chunk.length;
    try {
      if (this.res.write(chunk)) return true;
      this.res.once('drain', onResponseDrain);
    } catch (err) {
      this.internalFailure(err);
    }
    return false;
  }

  onComplete(): void {
    if (this.headFields !== null && !this.writeHead()) return;
    this.endAttempt(false);
    try {
      this.attemptDone('response', false);
      this.res.end();
      this.finish('ok');
    } catch (err) {
      this.internalFailure(err);
    }
  }

  onError(err: Error): void {
    if (this.internalError !== null) {
      this.endAttempt(false);
      if (this.body !== null) this.body.abandonAttempt();
      this.answerInternalError();
      return;
    }
    const clientFault = this.clientGone || (this.body !== null && this.body.clientError !== null);
    this.endAttempt(!clientFault, err);
    if (this.body !== null) this.body.abandonAttempt();
    if (this.done) return;
    // Nothing of this response reached the client yet: the failure is answered as any other.
    if (this.responseStarted && !this.res.headersSent) this.responseStarted = false;
    if (clientFault) {
      // A chunked body grew past maxBodyBytes: 413, or a cut if the response has begun.
      if (this.body?.clientError instanceof BodyTooLargeError) return this.fail(ErrorCodes.bodyTooLarge);
      // The client hung up: not the backend's fault, nothing to answer.
      this.attemptDone('aborted', false);
      this.res.destroy();
      this.finish('aborted');
      return;
    }
    if (this.responseStarted) {
      // Part of the response is out: cut it so the client sees an incomplete message.
      this.attemptDone('reset', false);
      this.logAttemptFailure(err, 'reset', 'response cut short');
      this.res.destroy();
      this.finish('cut');
      return;
    }
    if (this.plannedRetry !== retryNone) {
      const plan = this.plannedRetry;
      this.plannedRetry = retryNone;
      this.runRetry('status', err, plan);
      return;
    }
    const kind = classify(err, this.connected);
    if (kind === 'invalid' || !this.mayRetry(kind)) {
      this.attemptDone(kind, false);
      this.logAttemptFailure(err, kind, 'not retried');
      this.fail(errorCodeByKind[kind]);
      return;
    }
    this.runRetry(kind, err, this.planRetry(kind));
  }

  /** Whether the policy and the request allow retrying this outcome at all. */
  private mayRetry(kind: FailureKind): boolean {
    const body = this.body;
    const bodyLeft = body !== null ? body.bodyLeft : this.wholeBody !== null && this.connected;
    const keyed = kind !== 'connect' && !isIdempotent(this.method) && hasIdempotencyKey(this.req.rawHeaders);
    return isRetryable(kind, this.method, bodyLeft, body === null || body.replayable, this.upstream.retry.retryOn, keyed);
  }

  /**
   * Where a failed attempt goes: the same backend (retrySame), the next (retryNext, nextBackend)
   * or nowhere (retryNone; stopCode and stopWhy say why). Takes a retry-budget slot for a retry.
   */
  private planRetry(kind: FailureKind): number {
    const upstream = this.upstream;
    const retry = upstream.retry;
    this.stopCode = errorCodeByKind[kind];
    if (retry.tryDurationMs > 0 && performance.now() - this.arrivalMs >= retry.tryDurationMs) {
      this.stopWhy = `not retried: tryDuration ${retry.tryDurationMs} ms spent`;
      return retryNone;
    }
    const backend = this.backend as Backend;
    const sent = kind !== 'connect';
    let same = this.retriesOnBackend < retry.retriesPerBackend && backend.available;
    // The simple design's "mark down after the retries fail" is for a backend that cannot be
    // reached. A failure after the request was sent may be the request's own doing (a "query of
    // death"): only outlier detection, across different requests, takes the backend out.
    if (!sent && !same && this.retriesOnBackend >= retry.retriesPerBackend && backend.downReasons === 0) {
      backend.markDown(DownReason.failedAttempts);
      this.ctx.logger.warn({ backend: backend.url }, `${backend.url} [down] after ${plural(retry.retriesPerBackend + 1, 'failed attempt')}`);
    }
    // The budget caps retries that could multiply a backend's work; a connect failure did none.
    const budget = upstream.retryBudget;
    if (this.holdsRetry) {
      this.holdsRetry = false;
      budget.release();
    }
    if (kind !== 'connect') {
      if (!budget.tryAcquire()) {
        this.stopWhy = `not retried: retry budget spent (${budget.activeRetries} retries in flight of ${budget.activeRequests} requests)`;
        return retryNone;
      }
      this.holdsRetry = true;
    }
    // After a failure once sent, the request moves on to another backend (as nginx's
    // proxy_next_upstream does); the same one is tried again only when it is the only one.
    if (same && sent && this.backendsTried > 1) same = false;
    if (same && !sent) return retrySame;
    (this.excluded ??= new Set()).add(backend);
    const next = this.backendsTried >= retry.maxBackends ? undefined : upstream.balancer.pick(this);
    if (next === undefined && same) {
      this.excluded.delete(backend);
      return retrySame;
    }
    if (next === undefined) {
      // 503 when nothing could be reached; a backend that took the request and failed it is a 502.
      if (!sent && (this.backendsTried < retry.maxBackends || !upstream.hasAvailable())) this.stopCode = ErrorCodes.noBackend;
      this.stopWhy = 'giving up on this backend';
      return retryNone;
    }
    this.nextBackend = next;
    return retryNext;
  }

  /** Carries out a plan of planRetry for an attempt that failed with `kind`. */
  private runRetry(kind: FailureKind, err: Error, plan: number): void {
    if (plan === retryNone) {
      this.attemptDone(kind, false);
      if (this.stopWhy.startsWith('not retried: retry budget')) this.logBudgetSpent(err, kind);
      else this.logAttemptFailure(err, kind, this.stopWhy);
      this.fail(this.stopCode);
      return;
    }
    this.attemptDone(kind, true);
    const retry = this.upstream.retry;
    if (plan === retrySame) {
      this.retriesOnBackend++;
      const delayMs = backoffDelayMs(this.retriesOnBackend, retry.retryDelayMs, retry.maxRetryDelayMs, this.upstream.random);
      this.logAttemptFailure(err, kind, `retry ${this.retriesOnBackend} of ${retry.retriesPerBackend} in ${delayMs} ms`);
      this.retryTimer = setTimeout(onRetryTimer, delayMs, this);
      return;
    }
    const backend = this.backend as Backend;
    const next = this.nextBackend as Backend;
    this.nextBackend = null;
    this.logAttemptFailure(err, kind, 'giving up on this backend');
    this.ctx.logger.warn({ from: backend.url, to: next.url }, `moving request ${this.method} ${this.target} from ${backend.url} to ${next.url}`);
    this.backend = next;
    this.backendsTried++;
    this.retriesOnBackend = 0;
    this.dispatch();
  }

  // ---- client side ---------------------------------------------------------------------------

  onRetryTimer(): void {
    this.retryTimer = null;
    if (this.clientGone) return;
    this.dispatch();
  }

  /** The response is over: sent, or the client went away. Node emits this exactly once. */
  onResponseClose(): void {
    if (!this.done) this.onClientGone();
    const ctx = this.ctx;
    ctx.active--;
    if (ctx.onIdle !== null) ctx.onIdle();
  }

  private onClientGone(): void {
    this.clientGone = true;
    if (this.queueTimer !== null) (this.upstream.queue as NonNullable<Upstream['queue']>).leave(this);
    if (!this.attemptActive && this.retryTimer === null) {
      // Still reading a small body: no attempt to abort.
      this.finish('aborted');
      return;
    }
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.finish('aborted');
      return;
    }
    // Abort the attempt; its onError finishes the exchange. Until onConnect, the request is
    // queued in the pool and onConnect aborts it.
    if (this.abortAttempt !== null) this.abortAttempt();
  }

  onClientDrain(): void {
    const resume = this.resumeUpstream;
    if (resume !== null) resume();
  }

  /** Answers with the error's status and a one-line body, or cuts the response if it began. */
  fail(code: ErrorCode): void {
    const res = this.res;
    if (res.headersSent || res.destroyed) {
      // Part of the response is out: the client sees it cut, and the log says so.
      const cut = res.headersSent && !this.clientGone;
      res.destroy();
      this.finish(cut ? 'cut' : 'error');
      return;
    } else {
      const { status, body } = httpErrorFor(code);
      const text = `${body}\n`;
      // An unread request body would have to be drained to keep the connection: close instead.
      // A request we refused may have framing we do not trust: close after it too.
      // A request without a body is complete once its head is parsed, though Node sets `complete` later.
      const unread = !this.req.complete && declaredBodyLength(this.req) !== 0;
      if (this.ctx.closing || unread || code === ErrorCodes.badRequest) res.shouldKeepAlive = false;
      res.writeHead(status, {
        'content-type': 'text/plain; charset=utf-8',
        'x-content-type-options': 'nosniff',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
    }
    this.finish('error');
  }

  /**
   * An error thrown by our own code: never counted against a backend, never retried. The
   * attempt in flight, if any, is aborted and its onError answers; else we answer here.
   */
  internalFailure(err: unknown): void {
    if (this.internalError !== null || this.done) return;
    const error = err instanceof Error ? err : new Error(String(err));
    this.internalError = error;
    this.ctx.logger.error({ err: error, method: this.method, path: this.target }, `internal error while proxying ${this.method} ${this.target}: ${error.message}`);
    if (this.attemptActive && this.abortAttempt !== null) {
      this.abortAttempt(error);
      return;
    }
    if (this.attemptActive) this.endAttempt(false);
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.answerInternalError();
  }

  /** 500 when nothing was sent yet, else the client connection closes. */
  private answerInternalError(): void {
    if (this.done) return;
    if (this.clientGone) {
      this.finish('aborted');
      return;
    }
    this.fail(ErrorCodes.internal);
  }

  private finish(outcome: RequestEvent['outcome']): void {
    this.done = true;
    if (this.counted) {
      this.counted = false;
      const budget = this.upstream.retryBudget;
      budget.activeRequests--;
      if (this.holdsRetry) {
        this.holdsRetry = false;
        budget.release();
      }
    }
    if (this.startMs < 0) return;
    const event: RequestEvent = {
      upstream: this.upstream === null ? '' : this.upstream.name,
      backend: this.backend,
      method: this.method,
      // From the raw list: req.headers would build Node's whole header object for one field.
      host: hostHeader(this.req.rawHeaders),
      path: this.target,
      // What the client got: the status line written, 0 when none was.
      status: outcome === 'aborted' || !this.res.headersSent ? 0 : this.res.statusCode,
      durationMs: performance.now() - this.startMs,
      bytesSent: this.bytesSent,
      attempts: this.attempts,
      clientIp: this.clientIp,
      outcome,
    };
    if (requestChannel.hasSubscribers) requestChannel.publish(event);
    if (this.ctx.accessLog !== null) writeAccessLog(this.ctx.accessLog, event);
  }

  /** A retry the budget refused: at debug level, as an outage would otherwise flood the log. */
  private logBudgetSpent(err: Error, kind: string): void {
    const logger = this.ctx.logger;
    if (!logger.isLevelEnabled('debug')) return;
    const backend = this.backend as Backend;
    logger.debug({ backend: backend.url, method: this.method, path: this.target, kind, error: (err as { code?: string }).code ?? err.message }, `attempt to ${backend.url} failed (${kind}: ${err.message}); ${this.stopWhy}`);
  }

  private logAttemptFailure(err: Error, kind: string, action: string): void {
    const logger = this.ctx.logger;
    if (!logger.isLevelEnabled('warn')) return;
    const backend = this.backend as Backend;
    logger.warn(
      { backend: backend.url, method: this.method, path: this.target, kind, error: (err as { code?: string }).code ?? err.message },
      `attempt to ${backend.url} failed (${kind}: ${err.message}); ${action}`,
    );
  }
}
