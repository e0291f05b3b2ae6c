/**
 * Errors of Switchyard's backend clients (upstream/h1, upstream/h2). Where undici has the same failure its code is kept
 * (UND_ERR_*), so the attempt loop's classifier (proxy/outcome.ts), logs and dashboards read
 * both clients alike; a malformed response is SWY_ERR_BAD_RESPONSE, a protocol error (502).
 */
class CodedError extends Error {
  readonly code: string;
  constructor(name: string, code: string, message: string) {
    super(message);
    this.name = name;
    this.code = code;
  }
}

/** The backend's response breaks HTTP/1.1 framing or field syntax (RFC 9112), or sends 1xx without end: never relayed, never retried. */
export class BadResponseError extends CodedError {
  constructor(message: string) {
    super('BadResponseError', 'SWY_ERR_BAD_RESPONSE', `invalid response from the backend: ${message}`);
  }
}

/** The response head (or trailer section) is larger than maxResponseHeaderSize. */
export class HeadersOverflowError extends CodedError {
  constructor(limitBytes: number) {
    super('HeadersOverflowError', 'UND_ERR_HEADERS_OVERFLOW', `the response head is larger than ${limitBytes} bytes`);
  }
}

export class ConnectTimeoutError extends CodedError {
  constructor(address: string, timeoutMs: number) {
    super('ConnectTimeoutError', 'UND_ERR_CONNECT_TIMEOUT', `connect timeout (attempted ${address}, timeout ${timeoutMs} ms)`);
  }
}

export class HeadersTimeoutError extends CodedError {
  constructor(timeoutMs: number) {
    super('HeadersTimeoutError', 'UND_ERR_HEADERS_TIMEOUT', `headers timeout: no response head within ${timeoutMs} ms of the request`);
  }
}

export class BodyTimeoutError extends CodedError {
  constructor(timeoutMs: number) {
    super('BodyTimeoutError', 'UND_ERR_BODY_TIMEOUT', `body timeout: no response body bytes for ${timeoutMs} ms`);
  }
}

/** The attempt was aborted by its handler without a reason: the client went away. */
export class RequestAbortedError extends CodedError {
  constructor() {
    super('RequestAbortedError', 'UND_ERR_ABORTED', 'request aborted');
  }
}

/** The backend closed the connection before the response was complete (or before it was established). */
export class SocketClosedError extends CodedError {
  constructor(message: string) {
    super('SocketError', 'UND_ERR_SOCKET', message);
  }
}

/**
 * Nothing of the request reached the backend: its connection closed, or it spoke out of turn,
 * before the first byte went out. The same code as the HTTP/2 client's unprocessed streams
 * (h2/errors.ts): sent again like a connect failure, whatever the method, and no fault of the backend.
 */
export class UnsentRequestError extends CodedError {
  constructor(cause: Error) {
    super('UnsentRequestError', 'SWY_ERR_UPSTREAM_UNPROCESSED', `the request was not sent: ${cause.message}`);
    this.cause = cause;
  }
}

/** A request Switchyard will not send (a header with CR/LF, two Host fields, a bad path). */
export class InvalidRequestError extends CodedError {
  constructor(message: string) {
    super('InvalidArgumentError', 'UND_ERR_INVALID_ARG', message);
  }
}

/** A streamed request body longer or shorter than its Content-Length. */
export class RequestLengthMismatchError extends CodedError {
  constructor(declared: number, sent: number) {
    super('RequestContentLengthMismatchError', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', `request body length does not match content-length header (declared ${declared}, ${sent < declared ? 'got' : 'got at least'} ${sent})`);
  }
}

/** A dispatch after close() or destroy(). */
export class ClientClosedError extends CodedError {
  constructor() {
    super('ClientClosedError', 'UND_ERR_CLOSED', 'the backend client is closed');
  }
}

/** The client was destroyed with requests still in flight. */
export class ClientDestroyedError extends CodedError {
  constructor() {
    super('ClientDestroyedError', 'UND_ERR_DESTROYED', 'the backend client was destroyed');
  }
}
