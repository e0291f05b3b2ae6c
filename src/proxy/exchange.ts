import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCodes } from '../errors.js';
import type { Backend } from '../upstream/backend.js';
import type { RawFields } from '../upstream/dispatcher.js';
import type { Upstream } from '../upstream/upstream.js';
import { afterFailedAttempt, endAttempt, firstAttempt, recordResponse, retryOnStatus } from './attempt.js';
import { answerError, finish, publishAttempt } from './completion.js';
import type { ProxyContext } from './context.js';
import { ExchangeState, kExchange, type ResponseWithExchange } from './exchange-state.js';
import { acceptHead, cutResponse, relayChunk, relayEnd, relayInterim, writeHeldHead } from './relay.js';
import { isBackendExcused } from './outcome.js';
import { BodyTooLargeError } from './request-body.js';
import { hasTrailers, relayTrailers, type UpstreamTrailers } from './trailers.js';

function onResponseClose(this: ResponseWithExchange): void {
  (this[kExchange] as Exchange | null | undefined)?.onResponseClose();
}

/**
 * An HTTP/1.1 request/response exchange: wires undici's dispatch callbacks (one attempt at a
 * time), the upstream queue's and Node's response callbacks to the stages, in flow order:
 * attempt loop (attempt.ts) → relay (relay.ts) → completion (completion.ts). Every entry point
 * catches errors of our own code, which are never a backend's fault.
 */
export class Exchange extends ExchangeState {
  constructor(ctx: ProxyContext, upstream: Upstream | null, req: IncomingMessage, res: ServerResponse, target: string, host: string) {
    super(ctx, upstream, req, res, target, host);
    res.on('close', onResponseClose);
  }

  // ---- the upstream queue ------------------------------------------------------------------

  onQueueSlot(backend: Backend): void {
    firstAttempt(this, backend);
  }

  onQueueTimeout(): void {
    answerError(this, ErrorCodes.noBackend);
  }

  // ---- undici dispatch handler -------------------------------------------------------------

  onConnect(abort: (err?: Error) => void): void {
    this.connected = true;
    this.abortAttempt = abort;
    if (this.clientGone) abort();
  }

  onHeaders(statusCode: number, rawHeaders: RawFields, resume: () => void, statusText: string): boolean {
    if (this.clientGone) return false;
    if (statusCode < 200) {
      relayInterim(this, statusCode, rawHeaders);
      return true;
    }
    try {
      recordResponse(this, statusCode);
      if (retryOnStatus(this, statusCode)) return false;
      acceptHead(this, statusCode, rawHeaders, resume, statusText);
      return true;
    } catch (err) {
      this.internalFailure(err);
      return false;
    }
  }

  onData(chunk: Buffer): boolean {
    if (this.clientGone) return false;
    try {
      return relayChunk(this, chunk);
    } catch (err) {
      this.internalFailure(err);
      return false;
    }
  }

  onComplete(trailers: UpstreamTrailers | null): void {
    if (this.headFields !== null && !writeHeldHead(this, this.lastChunk === null && !hasTrailers(trailers))) return;
    endAttempt(this, false);
    try {
      relayTrailers(this.res, trailers);
      relayEnd(this);
    } catch (err) {
      this.internalFailure(err);
    }
  }

  onError(err: Error): void {
    if (this.internalError !== null) {
      endAttempt(this, false);
      if (this.body !== null) this.body.abandonAttempt();
      this.answerInternalError();
      return;
    }
    const body = this.body;
    const clientFault = this.clientGone || (body !== null && body.clientError !== null);
    // A refused stream or a backend's graceful GOAWAY is no failure of the backend (RFC 9113 §6.8, §8.7).
    endAttempt(this, !clientFault && !isBackendExcused(err), err);
    if (body !== null) body.abandonAttempt();
    if (this.done) return;
    // Nothing of this response reached the client yet: the failure is answered as any other.
    if (this.responseStarted && !this.res.headersSent) this.responseStarted = false;
    if (clientFault) {
      // A chunked body grew past maxBodyBytes: 413, or a cut if the response has begun.
      if (body?.clientError instanceof BodyTooLargeError) return answerError(this, ErrorCodes.bodyTooLarge);
      // The client hung up: not the backend's fault, nothing to answer.
      publishAttempt(this, 'aborted', false);
      this.res.destroy();
      finish(this, 'aborted');
      return;
    }
    if (this.responseStarted) return cutResponse(this, err);
    afterFailedAttempt(this, err);
  }

  // ---- the client side ---------------------------------------------------------------------

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
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      finish(this, 'aborted');
      return;
    }
    if (!this.attemptActive) {
      // Still reading a small body, or waiting in the queue: no attempt to abort.
      finish(this, 'aborted');
      return;
    }
    // Abort the attempt; its onError finishes the exchange. Until onConnect, the request is
    // queued in the pool and onConnect aborts it.
    if (this.abortAttempt !== null) this.abortAttempt();
  }

  /**
   * An error thrown by our own code: logged once with its stack, never counted against a
   * backend, never retried. The attempt in flight, if any, is aborted and its onError answers.
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
    if (this.attemptActive) endAttempt(this, false);
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.answerInternalError();
  }

  /** 500 when nothing was sent yet, else the client connection closes. */
  private answerInternalError(): void {
    if (this.done) return;
    if (this.clientGone) finish(this, 'aborted');
    else answerError(this, ErrorCodes.internal);
  }
}
