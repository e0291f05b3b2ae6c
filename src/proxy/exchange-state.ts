import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Timer } from '../clock.js';
import { ErrorCodes, type ErrorCode } from '../errors.js';
import { requestChannel } from '../events.js';
import type { Backend } from '../upstream/backend.js';
import type { BackendDispatchHandler, RawFields } from '../upstream/dispatcher.js';
import type { QueueWaiter } from '../upstream/queue.js';
import type { Upstream } from '../upstream/upstream.js';
import type { ProxyContext } from './context.js';
import type { RequestBody } from './request-body.js';
import type { UpstreamTrailers } from './trailers.js';
import { cookieValue, hashKeyOf } from './request-keys.js';
import { clientAddress } from './request-target.js';

/** Where the exchange of a response is found from Node's 'close' and 'drain' callbacks. */
export const kExchange = Symbol('switchyard.exchange');
export interface ResponseWithExchange extends ServerResponse {
  [kExchange]?: ExchangeState | null;
}

/** Plans of the attempt loop's planRetry. */
export const retryNone = 0;
export const retrySame = 1;
export const retryNext = 2;

/**
 * The state of one client request and its attempts: the one object a request costs. Each stage
 * (admission, attempt loop, relay, completion) is a set of functions over it; the Exchange
 * subclass wires them to undici's and Node's callbacks. A WebSocket tunnel or an HTTP/2 stream
 * is another subclass over the same state, reusing the attempt loop and the relay.
 */
export abstract class ExchangeState implements BackendDispatchHandler, QueueWaiter {
  readonly ctx: ProxyContext;
  /** The route's upstream, from the snapshot current when the request arrived (a refused request has none and never reads it). */
  readonly upstream: Upstream;
  readonly req: IncomingMessage;
  readonly res: ResponseWithExchange;
  /** Normalised path and query, as the backend receives it under its base path. */
  readonly target: string;
  /** The validated, lower-cased host (request-host.ts), '' for none; a refused request's Host as sent, for the log. */
  readonly host: string;
  readonly method: string;
  readonly clientIp: string;
  /** Request arrival, taken only when someone listens for request events; -1 otherwise. */
  readonly startMs: number;

  // Forwarding: what each attempt sends.
  headers: string[] | null = null;
  /** A streamed request body; null when there is none or it was read whole. */
  body: RequestBody | null = null;
  /** A small request body read whole before the first attempt, in the chunks it came in. */
  wholeBody: Buffer | readonly Buffer[] | null = null;

  // Balancer inputs (PickContext), computed on first read.
  excluded: Set<Backend> | undefined = undefined;
  hashKeyValue: string | undefined = undefined;
  stickyIdValue: string | undefined = undefined;
  stickyIdRead = false;

  // The attempt loop.
  backend: Backend | null = null;
  backendsTried = 0;
  retriesOnBackend = 0;
  retryTimer: NodeJS.Timeout | null = null;
  /** Counted in the upstream's active requests; holds one of its retry-budget slots. */
  counted = false;
  holdsRetry = false;
  /** Arrival at start, read only when the upstream has a tryDuration. */
  arrivalMs = 0;
  /** A retry planned in onHeaders for a listed status, run by the onError of the abort. */
  plannedRetry = retryNone;
  nextBackend: Backend | null = null;
  /** Why planRetry said no, and the error to answer with. */
  stopCode: ErrorCode = ErrorCodes.noBackend;
  stopWhy = '';
  /** Set while waiting in the upstream's queue for a backend slot. */
  queueTimer: Timer | null = null;
  attempts = 0;

  // The current attempt.
  attemptActive = false;
  connected = false;
  abortAttempt: ((err?: Error) => void) | null = null;
  /** Attempt start, and time to its response headers (-1 until they arrive). */
  attemptStartMs = 0;
  latencyMs = -1;
  /** Status of the current attempt's response, 0 until its headers arrive. */
  attemptStatus = 0;

  // The relay.
  resumeUpstream: (() => void) | null = null;
  responseStarted = false;
  /**
   * The response head, held until the first body byte or the end: Node puts a head on the wire
   * only then anyway, and until it is there a failed attempt can still be answered 502.
   */
  headStatus = 0;
  headText = '';
  headFields: string[] | null = null;
  /** The response's Content-Length, -1 when it has none (chunked, or until the head arrives). */
  responseLength = -1;
  /** A first chunk that is the whole body, held so the end writes it (one write, no uncork tick). */
  lastChunk: Buffer | null = null;
  bytesSent = 0;

  // Completion.
  /** A thrown error of our own code (never the backend's fault); null: none. */
  internalError: Error | null = null;
  clientGone = false;
  done = false;

  constructor(ctx: ProxyContext, upstream: Upstream | null, req: IncomingMessage, res: ServerResponse, target: string, host: string) {
    this.ctx = ctx;
    this.upstream = upstream as Upstream;
    this.startMs = requestChannel.hasSubscribers || ctx.accessLog !== null ? performance.now() : -1;
    this.req = req;
    this.res = res as ResponseWithExchange;
    this.target = target;
    this.host = host;
    this.method = req.method ?? 'GET';
    this.clientIp = clientAddress(req);
    this.res[kExchange] = this;
  }

  /** An error thrown by our own code: never the backend's fault (Exchange answers 500 or cuts). */
  abstract internalFailure(err: unknown): void;

  // undici's dispatch handler of each attempt, and the upstream queue's waiter: see Exchange.
  abstract onConnect(abort: (err?: Error) => void): void;
  abstract onHeaders(statusCode: number, rawHeaders: RawFields, resume: () => void, statusText: string): boolean;
  abstract onData(chunk: Buffer): boolean;
  abstract onComplete(trailers: UpstreamTrailers | null): void;
  abstract onError(err: Error): void;
  abstract onQueueSlot(backend: Backend): void;
  abstract onQueueTimeout(): void;

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
}
