import http2, { type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { BadResponseError, BodyTimeoutError, HeadersOverflowError, HeadersTimeoutError, InvalidRequestError, RequestAbortedError } from '../client-errors.js';
import type { BackendDispatchOptions } from '../dispatcher.js';
import { maxInterimResponses } from '../protocol.js';
import { relayableTrailers } from '../trailer-fields.js';
import { StreamResetError, UnprocessedStreamError } from './errors.js';
import { bodyOf, requestHead } from './request-head.js';
import { responseFields } from './response-head.js';
import { listen, listenForDrain, onAttemptTimer, type AttemptStream, type StreamEvents } from './stream-events.js';

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** The legacy undici dispatch-handler callbacks the exchange implements. */
export interface StreamHandler {
  onConnect?(abort: (err?: Error) => void): void;
  onHeaders?(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean;
  onData?(chunk: Buffer): boolean;
  onComplete?(trailers: string[] | null): void;
  onError?(err: Error): void;
}

/** What an attempt needs of the session it runs on. */
export interface StreamOwner {
  readonly session: ClientHttp2Session | null;
  /** The last-stream-id of the backend's GOAWAY; -1 before one. */
  readonly goawayLastId: number;
  /** The attempt is over (complete, failed or aborted): its slot is free. */
  streamEnded(attempt: StreamAttempt): void;
}

/** Per-backend settings every attempt reads. */
export interface StreamSettings {
  readonly scheme: 'http' | 'https';
  /** `host:port` of the backend, the `:authority` when the request carries no Host. */
  readonly authority: string;
  /** 0: off. */
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  /** A response head larger than this (fields counted as in HTTP/1.1) is a protocol error. */
  readonly maxHeaderBytes: number;
}

/**
 * One attempt on one HTTP/2 stream: the request (head, body with backpressure, trailers) and the
 * response reported to the exchange with undici's legacy handler callbacks. The stream's
 * listeners are shared functions that find the attempt on the stream: no closures per event.
 */
export class StreamAttempt implements StreamEvents {
  readonly options: BackendDispatchOptions;
  readonly handler: StreamHandler;
  private readonly settings: StreamSettings;
  private owner: StreamOwner | null = null;
  private stream: AttemptStream | null = null;
  done = false;
  private paused = false;
  private timer: NodeJS.Timeout | null = null;
  private trailers: IncomingHttpHeaders | null = null;
  private streamError: Error | null = null;
  private wakeWriter: (() => void) | null = null;
  private waitingForHead = true;
  private responded = false;
  private interim = 0;
  /** The response's Content-Length (-1: none, or no body whatever it says) and the body bytes so far. */
  private expected = -1;
  private received = 0;

  /** The exchange's abort(): without an error the client left (undici's RequestAbortedError). */
  readonly abort = (err?: Error): void => this.fail(err ?? new RequestAbortedError(), NGHTTP2_CANCEL);
  readonly resume = (): void => {
    if (!this.paused || this.done) return;
    this.paused = false;
    (this.stream as AttemptStream).resume();
  };

  constructor(options: BackendDispatchOptions, handler: StreamHandler, settings: StreamSettings) {
    this.options = options;
    this.handler = handler;
    this.settings = settings;
  }

  /** Fails an attempt that never reached a connected session: a 'connect' failure for the exchange. */
  failUnsent(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.handler.onError?.(err);
  }

  /** Sends the request on `owner`'s connected session. */
  start(owner: StreamOwner): void {
    this.owner = owner;
    this.handler.onConnect?.(this.abort);
    if (this.done) return;
    const options = this.options;
    const body = bodyOf(options.body);
    const from = options.trailersFrom ?? null;
    // Trailers follow a streamed body; a body read whole has its trailers known already.
    const waitForTrailers = from !== null && body !== null && (!Buffer.isBuffer(body) || relayableTrailers(from.trailers) !== null);
    let stream: AttemptStream;
    try {
      const head = requestHead(options.method, options.path, this.settings.scheme, this.settings.authority, options.headers as Parameters<typeof requestHead>[4]);
      stream = (owner.session as ClientHttp2Session).request(head, { endStream: body === null, waitForTrailers }) as AttemptStream;
    } catch (err) {
      const code = (err as { code?: string }).code;
      // A session that went away between the pick and now never saw the stream.
      const unsent = code === 'ERR_HTTP2_GOAWAY_SESSION' || code === 'ERR_HTTP2_INVALID_SESSION' || code === 'ERR_HTTP2_OUT_OF_STREAMS';
      this.fail(unsent ? new UnprocessedStreamError(`the stream could not be opened: ${(err as Error).message}`, { cause: err }) : new InvalidRequestError((err as Error).message), NGHTTP2_CANCEL);
      return;
    }
    this.stream = stream;
    listen(stream, this, waitForTrailers);
    this.arm(this.options.headersTimeout ?? this.settings.headersTimeoutMs, true);
    if (body === null) return;
    if (Buffer.isBuffer(body)) {
      stream.end(body);
      return;
    }
    listenForDrain(stream);
    void this.writeBody(stream, body);
  }

  private async writeBody(stream: AttemptStream, body: AsyncIterable<Buffer>): Promise<void> {
    try {
      for await (const chunk of body) {
        if (this.done || stream.destroyed) return;
        // The backend is reading: the wait for its response head starts again (as undici does).
        this.timer?.refresh();
        if (!stream.write(chunk)) {
          await new Promise<void>((resolve) => {
            this.wakeWriter = resolve;
          });
          if (this.done || stream.destroyed) return;
        }
      }
      if (!this.done && !stream.destroyed) stream.end();
    } catch (err) {
      // The client's body failed (it went away, or grew past the limit): the exchange reads why.
      this.fail(err as Error, NGHTTP2_CANCEL);
    }
  }

  onResponse(headers: IncomingHttpHeaders): void {
    const status = Number(headers[':status']);
    const raw = responseFields(headers, this.settings.maxHeaderBytes);
    if (raw === null) return this.fail(new HeadersOverflowError(this.settings.maxHeaderBytes), NGHTTP2_CANCEL);
    this.responded = true;
    const length = headers['content-length'];
    if (length !== undefined && status !== 204 && status !== 304 && this.options.method !== 'HEAD') this.expected = Number(length);
    this.arm(this.options.bodyTimeout ?? this.settings.bodyTimeoutMs, false);
    const go = this.handler.onHeaders?.(status, raw as unknown as Buffer[], this.resume, '');
    if (go === false && !this.done) this.pause();
  }

  onInterim(headers: IncomingHttpHeaders): void {
    const status = Number(headers[':status']);
    // Informational responses only (RFC 9113 §8.1); trailers come as 'trailers'.
    if (!(status >= 100 && status < 200)) return;
    if (++this.interim > maxInterimResponses) return this.fail(new BadResponseError(`more than ${maxInterimResponses} interim responses`), NGHTTP2_CANCEL);
    const raw = responseFields(headers, this.settings.maxHeaderBytes);
    if (raw === null) return this.fail(new HeadersOverflowError(this.settings.maxHeaderBytes), NGHTTP2_CANCEL);
    this.handler.onHeaders?.(status, raw as unknown as Buffer[], this.resume, '');
  }

  onData(chunk: Buffer): void {
    this.timer?.refresh();
    this.received += chunk.length;
    if (this.handler.onData?.(chunk) === false && !this.done) this.pause();
  }

  onTrailers(headers: IncomingHttpHeaders): void {
    this.trailers = headers;
  }

  onEnd(): void {
    if (this.done) return;
    const stream = this.stream as AttemptStream;
    // Node also ends the readable side of a stream reset or cut with its connection: complete only
    // with a head and END_STREAM seen (trailers, or a head that ended it), or without a reset code.
    const code = stream.rstCode;
    const reset = code !== undefined && code !== NGHTTP2_NO_ERROR && this.trailers === null && !stream.endAfterHeaders;
    if (!this.responded || reset) return this.fail(this.closeError(), NGHTTP2_CANCEL);
    // RST_STREAM NO_ERROR mid-body also ends the readable side: a short body is no complete response (RFC 9113 §8.1.1).
    if (this.expected >= 0 && this.received !== this.expected) return this.fail(new StreamResetError(`the response ended after ${this.received} of its ${this.expected} bytes`), NGHTTP2_CANCEL);
    this.done = true;
    this.clearTimer();
    // A response complete before the request body (RFC 9113 §8.1): the rest is not wanted.
    if (!stream.writableFinished) stream.close(NGHTTP2_CANCEL);
    this.wake();
    (this.owner as StreamOwner).streamEnded(this);
    this.handler.onComplete?.(this.trailers as unknown as string[] | null);
  }

  onError(err: Error): void {
    this.streamError ??= err;
  }

  onClose(): void {
    this.wake();
    if (this.done) return;
    this.fail(this.closeError(), 0);
  }

  onWantTrailers(): void {
    const from = this.options.trailersFrom;
    const fields = from == null ? null : relayableTrailers(from.trailers);
    // None: Node ends the stream with an empty DATA frame.
    (this.stream as AttemptStream).sendTrailers(fields ?? {});
  }

  onDrain(): void {
    this.wake();
  }

  onTimer(): void {
    if (this.done) return;
    // A pause is the client's doing, not the backend's: the idle time starts again on resume.
    if (this.paused) {
      this.timer?.refresh();
      return;
    }
    const timeoutMs = this.waitingForHead ? (this.options.headersTimeout ?? this.settings.headersTimeoutMs) : (this.options.bodyTimeout ?? this.settings.bodyTimeoutMs);
    this.fail(this.waitingForHead ? new HeadersTimeoutError(timeoutMs) : new BodyTimeoutError(timeoutMs), NGHTTP2_CANCEL);
  }

  /** Why a stream closed before its response ended, in the terms of outcome.ts. */
  private closeError(): Error {
    const stream = this.stream as AttemptStream;
    const id = stream.id;
    if (stream.rstCode === NGHTTP2_REFUSED_STREAM) return new UnprocessedStreamError('the backend refused the stream (RST_STREAM REFUSED_STREAM)');
    const lastId = (this.owner as StreamOwner).goawayLastId;
    if (id === undefined) return new UnprocessedStreamError('the connection closed before the stream was sent', { cause: this.streamError });
    if (lastId >= 0 && id > lastId) return new UnprocessedStreamError(`the backend's GOAWAY (last stream ${lastId}) left stream ${id} unprocessed`);
    return this.streamError ?? new StreamResetError(`the backend reset the stream (code ${stream.rstCode ?? 0})`);
  }

  private fail(err: Error, code: number): void {
    if (this.done) return;
    this.done = true;
    this.clearTimer();
    const stream = this.stream;
    if (stream !== null && !stream.closed) stream.close(code);
    this.wake();
    if (this.owner !== null) this.owner.streamEnded(this);
    this.handler.onError?.(err);
  }

  private pause(): void {
    this.paused = true;
    (this.stream as AttemptStream).pause();
  }

  private wake(): void {
    const wake = this.wakeWriter;
    if (wake === null) return;
    this.wakeWriter = null;
    wake();
  }

  /** Starts the wait for the response head (headersTimeout) or, once it came, for each body chunk (bodyTimeout). */
  private arm(ms: number, head: boolean): void {
    this.clearTimer();
    this.waitingForHead = head;
    if (ms > 0) this.timer = setTimeout(onAttemptTimer, ms, this);
  }

  private clearTimer(): void {
    if (this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
  }
}
