import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCodes, type ErrorCode } from '../errors.js';
import { pickAndDispatch } from './attempt.js';
import { answerError } from './completion.js';
import { forwardingFor, type ProxyContext } from './context.js';
import { Exchange } from './exchange.js';
import { requestHeadersForUpstream } from './headers.js';
import { hostHeader } from '../router.js';
import { normaliseTarget } from './normalise-path.js';
import { requestHost } from './request-host.js';
import { RequestBody } from './request-body.js';
import { declaredBodyLength, originFormTarget, versionRejection } from './request-target.js';
import { hasIdempotencyKey, isIdempotent } from './retry.js';
import { ambiguousRoute, noRoute, routeRequest } from './routing.js';

/**
 * Admission, the entry point of every proxied request: the host (RFC 9112 section 3.2), the
 * request target and its normal path, the HTTP version, routing, then the headers to forward and
 * how the body travels. A refused request is answered here and reaches no backend.
 */
export function handleRequest(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '';
  // One valid host (an absolute-form target's authority, else Host) or 400 (issue 10).
  admitRequest(ctx, req, res, url, requestHost(req.rawHeaders, url, req.httpVersionMinor !== 0), versionRejection(req));
}

/**
 * The stages every kind of request shares once its framing gave a host (null: refuse with 400)
 * and said whether it refuses the request (`refusal`): HTTP/1.1 here, HTTP/2 streams in h2-admission.ts.
 */
export function admitRequest(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse, url: string, host: string | null, refusal: ErrorCode | null): void {
  const requested = originFormTarget(url);
  if (ctx.redirectHttps && host !== null && requested !== null) {
    redirectToHttps(ctx, res, host, requested);
    return;
  }
  // Routing and the backend read one normal path (issue 9); a target without one gets 400.
  const target = requested === null ? null : normaliseTarget(requested, ctx.limits.ambiguousPaths === 'keep');
  ctx.active++;
  const route = target === null || host === null ? ambiguousRoute : routeRequest(ctx, host, target);
  const upstream = route === ambiguousRoute ? null : route;
  const exchange = new Exchange(ctx, upstream, req, res, target ?? requested ?? '/', host ?? hostHeader(req.rawHeaders));
  try {
    if (route === ambiguousRoute) answerError(exchange, ErrorCodes.badRequest);
    else if (refusal !== null) answerError(exchange, refusal);
    else if (upstream === noRoute) answerError(exchange, ErrorCodes.noRoute);
    else admit(exchange);
  } catch (err) {
    exchange.internalFailure(err);
  }
}

/**
 * `redirectHttps`: 308 (RFC 9110 section 15.4.9, the method and body are kept) to the same host
 * and target over https on its default port, 443; the cleartext port is dropped.
 */
function redirectToHttps(ctx: ProxyContext, res: ServerResponse, host: string, target: string): void {
  const colon = host.lastIndexOf(':');
  const name = colon !== -1 && colon > host.lastIndexOf(']') ? host.slice(0, colon) : host;
  res.shouldKeepAlive = res.shouldKeepAlive && !ctx.closing;
  res.writeHead(308, { location: `https://${name}${target}`, 'content-length': '0' });
  res.end();
}

/** Counts the request against its upstream, builds the forwarded head and starts the body on its way. */
function admit(x: Exchange): void {
  const { ctx, req, upstream } = x;
  upstream.retryBudget.activeRequests++;
  x.counted = true;
  // tryDuration, and a gRPC deadline (grpc-deadline.ts), count from arrival.
  if (upstream.retry.tryDurationMs > 0 || upstream.multiplexed) x.arrivalMs = performance.now();
  x.headers = requestHeadersForUpstream(req.rawHeaders, x.clientIp, ctx.proto, req.httpVersion, forwardingFor(ctx, upstream), x.host);
  const length = declaredBodyLength(req);
  const maxBodyBytes = ctx.limits.maxBodyBytes;
  if (maxBodyBytes > 0 && length > maxBodyBytes) {
    // Refused before a byte of the body is read; the connection closes after the 413.
    answerError(x, ErrorCodes.bodyTooLarge);
    return;
  }
  const bufferBytes = upstream.retry.replayBufferBytes;
  if (length > 0 && length <= bufferBytes) {
    // A small body is read whole first, as nginx does: the backend gets head and body in one
    // write, and any attempt can send it again.
    readWholeBody(req, x);
    return;
  }
  // A larger body streams; only an idempotent (or Idempotency-Key) request can be replayed
  // once its body has left, so only then are its first bytes kept.
  if (length !== 0) x.body = new RequestBody(req, isIdempotent(x.method) || hasIdempotencyKey(req.rawHeaders) ? bufferBytes : 0, maxBodyBytes);
  pickAndDispatch(x);
}

function ignoreError(): void {}

/**
 * Collects a small request body, then starts the first attempt. Its closures live here, not in
 * admit(), so requests without a body allocate no closure context.
 */
function readWholeBody(req: IncomingMessage, x: Exchange): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    if (x.done || x.clientGone) return;
    try {
      // Kept in the chunks it came in: the HTTP/1.1 client writes them in one writev, so a
      // 64 KiB body split over two reads is not copied (and its copy not allocated) once more.
      x.wholeBody = chunks.length === 1 ? (chunks[0] as Buffer) : chunks;
      pickAndDispatch(x);
    } catch (err) {
      x.internalFailure(err);
    }
  });
  req.on('error', ignoreError);
}
