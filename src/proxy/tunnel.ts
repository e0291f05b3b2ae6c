import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { ErrorCodes, type ErrorCode } from '../errors.js';
import type { Backend } from '../upstream/backend.js';
import type { RawFields } from '../upstream/dispatcher.js';
import type { Upstream } from '../upstream/upstream.js';
import { forwardingFor, type OpenTunnel, type ProxyContext } from './context.js';
import { requestHeadersForUpstream, responseHeadersForClient } from './headers.js';
import { classify, errorCodeByKind } from './outcome.js';
import { cookieValue, hashKeyOf } from './request-keys.js';
import { clientAddress } from './request-target.js';
import { reportHandshakeAnswer, reportHandshakeFailure } from './tunnel-outcome.js';
import { answerRaw } from './tunnel-request.js';
import { TunnelTally } from './tunnel-tally.js';

const keepAliveDelayMs = 60_000;

function ignoreError(): void {}

const noFields: string[] = [];

/**
 * One WebSocket tunnel: the handshake is dispatched to a backend with undici's `upgrade`
 * option; a 101 joins both sockets, any other answer is relayed and the client closed.
 * It is its own undici dispatch handler and its own PickContext.
 */
export class Tunnel implements OpenTunnel {
  readonly clientIp: string;
  private headers: string[];
  private backend: Backend | null = null;
  private excluded: Set<Backend> | undefined = undefined;
  private backendsTried = 0;
  private attemptActive = false;
  private connected = false;
  private abort: ((err?: Error) => void) | null = null;
  /** The handshake's answer has started on the client socket: no retry, no error answer. */
  private answered = false;
  /** The status of a refusal relayed to the client; 0 before one. */
  private refusalStatus = 0;
  private upstreamSocket: Socket | null = null;
  private resume: (() => void) | null = null;
  private done = false;
  /** The open tunnel's figures, from the 101 on. */
  private tally: TunnelTally | null = null;

  private readonly ctx: ProxyContext;
  private readonly upstream: Upstream;
  /** The handshake's fields, for hash keys and the sticky cookie; let go once the tunnel opens. */
  private rawHeaders: readonly string[];
  private readonly client: Socket;
  private readonly head: Buffer;
  private readonly target: string;
  private readonly host: string;

  constructor(ctx: ProxyContext, upstream: Upstream, req: IncomingMessage, client: Socket, head: Buffer, target: string, host: string) {
    this.ctx = ctx;
    this.upstream = upstream;
    this.rawHeaders = req.rawHeaders;
    this.client = client;
    this.head = head;
    this.target = target;
    this.host = host;
    this.clientIp = clientAddress(req);
    // Connection and Upgrade are hop-by-hop: undici writes its own from the `upgrade` option.
    this.headers = requestHeadersForUpstream(req.rawHeaders, this.clientIp, ctx.proto, '1.1', forwardingFor(ctx, upstream), host);
    ctx.tunnels.add(this);
    client.on('close', () => this.onClientClose());
    client.on('drain', () => {
      const resume = this.resume;
      this.resume = null;
      if (resume !== null) resume();
    });
  }

  // PickContext
  get exclude(): ReadonlySet<Backend> | undefined {
    return this.excluded;
  }

  get hashKey(): string | undefined {
    const spec = this.upstream.hashKey;
    return spec === null ? undefined : hashKeyOf(spec, this.rawHeaders, this.target, this.clientIp);
  }

  get stickyId(): string | undefined {
    const sticky = this.upstream.sticky;
    return sticky === null ? undefined : cookieValue(this.rawHeaders, sticky.cookieName);
  }

  start(): void {
    const backend = this.upstream.balancer.pick(this);
    if (backend === undefined) return this.fail(ErrorCodes.noBackend);
    this.dispatch(backend);
  }

  private dispatch(backend: Backend): void {
    this.backend = backend;
    this.backendsTried++;
    this.attemptActive = true;
    this.connected = false;
    backend.inFlight++;
    backend.requestsTotal++;
    const balancer = this.upstream.balancer;
    if (balancer.onAttemptStart !== undefined) balancer.onAttemptStart(backend);
    backend.pool.dispatch(
      { path: backend.basePath === '' ? this.target : backend.basePath + this.target, method: 'GET', headers: this.headers, upgrade: 'websocket' },
      this,
    );
  }

  /** The attempt, or the tunnel it became, is over: the backend's load drops. */
  private endAttempt(failed: boolean): void {
    if (!this.attemptActive) return;
    this.attemptActive = false;
    const backend = this.backend as Backend;
    backend.inFlight--;
    if (failed) backend.failuresTotal++;
    const balancer = this.upstream.balancer;
    if (balancer.onAttemptEnd !== undefined) balancer.onAttemptEnd(backend, failed, 0);
  }

  // ---- undici dispatch handler -------------------------------------------------------------

  onConnect(abort: (err?: Error) => void): void {
    this.connected = true;
    this.abort = abort;
    if (this.done) abort();
  }

  /** A refusal (401, 404, a redirect…): relayed as an ordinary response, then the client closes. */
  onHeaders(statusCode: number, rawHeaders: RawFields, resume: () => void, statusText: string): boolean {
    if (this.done) return false;
    if (statusCode < 200) return true;
    this.answered = true;
    this.refusalStatus = statusCode;
    const fields = this.fieldsForClient(rawHeaders);
    let text = `HTTP/1.1 ${statusCode} ${statusText || STATUS_CODES[statusCode] || ''}\r\n`;
    for (let i = 0; i < fields.length; i += 2) text += `${fields[i]}: ${fields[i + 1]}\r\n`;
    // The client's socket left Node's HTTP parser: it cannot carry another request.
    text += 'connection: close\r\n\r\n';
    return this.write(Buffer.from(text, 'latin1'), resume);
  }

  onData(chunk: Buffer): boolean {
    return !this.done && this.write(chunk, null);
  }

  onComplete(): void {
    if (!this.done) reportHandshakeAnswer(this.upstream, this.backend as Backend, this.refusalStatus);
    this.endAttempt(false);
    this.client.end();
    this.finish();
  }

  onError(err: Error): void {
    // A refusal cut short after its head is a reset, as for a response (attempt.ts endAttempt).
    const kind = this.answered ? 'reset' : classify(err, this.connected);
    this.endAttempt(!this.done);
    if (this.done) return;
    reportHandshakeFailure(this.upstream, this.backend as Backend, kind, this.ctx.logger);
    if (this.answered) return this.close();
    // Nothing reached the backend's application yet: a connect failure moves on to the next backend.
    if (kind === 'connect' && this.backendsTried < this.upstream.retry.maxBackends) {
      (this.excluded ??= new Set()).add(this.backend as Backend);
      const next = this.upstream.balancer.pick(this);
      if (next !== undefined) return this.dispatch(next);
      return this.fail(ErrorCodes.noBackend);
    }
    this.fail(kind === 'connect' ? ErrorCodes.noBackend : errorCodeByKind[kind]);
  }

  /** The backend's fields for the client, with a sticky cookie that pins the client when needed. */
  private fieldsForClient(rawHeaders: RawFields): string[] {
    const fields = responseHeadersForClient(rawHeaders, this.ctx.responseVia, null, this.host, this.ctx.proto);
    const sticky = this.upstream.sticky;
    if (sticky !== null) {
      const cookie = sticky.setCookieFor(this.backend as Backend, this.stickyId);
      if (cookie !== undefined) fields.push('set-cookie', cookie);
    }
    return fields;
  }

  /** 101: our head to the client, then bytes both ways with backpressure (pipe) until either side closes. */
  onUpgrade(statusCode: number, rawHeaders: RawFields, socket: Socket): void {
    if (this.done) {
      socket.destroy();
      this.endAttempt(false);
      return;
    }
    this.upstreamSocket = socket;
    this.answered = true;
    reportHandshakeAnswer(this.upstream, this.backend as Backend, statusCode);
    const client = this.client;
    const fields = this.fieldsForClient(rawHeaders);
    // An open tunnel may idle for hours: it keeps nothing of the handshake but what it logs.
    this.rawHeaders = noFields;
    this.headers = noFields;
    this.abort = null;
    let text = `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? ''}\r\nconnection: Upgrade\r\nupgrade: websocket\r\n`;
    for (let i = 0; i < fields.length; i += 2) text += `${fields[i]}: ${fields[i + 1]}\r\n`;
    client.write(`${text}\r\n`, 'latin1');
    socket.on('error', ignoreError);
    socket.on('close', () => this.close());
    const tally = new TunnelTally(this, this.backend as Backend, this.ctx.tunnelCounts);
    this.tally = tally;
    client.on('data', (chunk: Buffer) => tally.in(chunk.length));
    socket.on('data', (chunk: Buffer) => tally.out(chunk.length));
    if (this.head.length > 0) tally.in(this.head.length);
    for (const side of [client, socket]) {
      side.setKeepAlive(true, keepAliveDelayMs);
      side.setNoDelay(true);
    }
    // Activity either way touches the client socket: its timeout is the tunnel's idle timeout.
    client.setTimeout(this.upstream.tunnels.idleTimeoutMs, () => this.close());
    if (this.head.length > 0) socket.write(this.head);
    socket.pipe(client);
    client.pipe(socket);
    client.resume();
  }

  // ---- the client side ---------------------------------------------------------------------

  private write(data: Buffer, resume: (() => void) | null): boolean {
    if (this.client.write(data)) return true;
    if (resume !== null) this.resume = resume;
    return false;
  }

  private onClientClose(): void {
    if (!this.done) this.close();
  }

  /** Answers a failure before the handshake got an answer, and closes. */
  private fail(code: ErrorCode): void {
    answerRaw(this.client, code);
    this.finish();
  }

  /** Closes both sides; idempotent. */
  destroy(): void {
    this.close();
  }

  private close(): void {
    const handshaking = !this.done && this.attemptActive && this.upstreamSocket === null;
    this.finish();
    this.client.destroy();
    // A handshake still under way is aborted; its onError (done: no answer) releases the attempt.
    if (handshaking && this.abort !== null) this.abort();
    if (this.upstreamSocket !== null && this.attemptActive) {
      this.upstreamSocket.destroy();
      this.endAttempt(false);
      const place = { clientIp: this.clientIp, host: this.host, path: this.target, upstream: this.upstream.name };
      (this.tally as TunnelTally).closed(this.ctx.accessLog, place);
    }
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    const ctx = this.ctx;
    ctx.tunnels.delete(this);
    if (ctx.onIdle !== null) ctx.onIdle();
  }
}
