/**
 * One table of coded errors. Every error Switchyard raises on purpose carries a stable
 * `code` (SWY_ERR_*), and this file is the single place that maps an error to the HTTP
 * status a client sees or the exit code the CLI returns.
 */
export const ErrorCodes = {
  /** Bad flag, option or config value: a user mistake, reported as one line. */
  config: 'SWY_ERR_CONFIG',
  /** No backend is alive, or every backend this request could try has failed. */
  noBackend: 'SWY_ERR_NO_BACKEND',
  /** Could not connect to (or talk to) the backend; retries are spent. */
  upstreamConnect: 'SWY_ERR_UPSTREAM_CONNECT',
  /** The backend closed or reset the connection before or while responding. */
  upstreamReset: 'SWY_ERR_UPSTREAM_RESET',
  /** The backend did not answer in time. */
  upstreamTimeout: 'SWY_ERR_UPSTREAM_TIMEOUT',
  /** The backend's response could not be relayed (invalid status or headers). */
  upstreamProtocol: 'SWY_ERR_UPSTREAM_PROTOCOL',
  /** No route matches the request's host and path. */
  noRoute: 'SWY_ERR_NO_ROUTE',
  /** The client sent something we will not forward. */
  badRequest: 'SWY_ERR_BAD_REQUEST',
  /** The request body is larger than the listener's maxBodySize. */
  bodyTooLarge: 'SWY_ERR_BODY_TOO_LARGE',
  /** The request's HTTP major version is not 1 (e.g. `HTTP/2.0` in HTTP/1 framing). */
  versionNotSupported: 'SWY_ERR_VERSION_NOT_SUPPORTED',
  /** An error in Switchyard's own code while handling a request: never a backend's fault. */
  internal: 'SWY_ERR_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class SwitchyardError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'SwitchyardError';
  }
}

/** A user mistake in flags, options or a config file. The CLI prints `message` and exits 2. */
export class ConfigError extends SwitchyardError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCodes.config, message, options);
    this.name = 'ConfigError';
  }
}

interface HttpMapping {
  readonly status: number;
  readonly body: string;
}

const httpByCode: Readonly<Record<ErrorCode, HttpMapping>> = {
  SWY_ERR_CONFIG: { status: 500, body: 'Internal Server Error' },
  // The body matches the original simple load balancer, which clients may test for.
  SWY_ERR_NO_BACKEND: { status: 503, body: 'Service not available' },
  SWY_ERR_UPSTREAM_CONNECT: { status: 502, body: 'Bad Gateway' },
  SWY_ERR_UPSTREAM_RESET: { status: 502, body: 'Bad Gateway' },
  SWY_ERR_UPSTREAM_PROTOCOL: { status: 502, body: 'Bad Gateway' },
  SWY_ERR_UPSTREAM_TIMEOUT: { status: 504, body: 'Gateway Timeout' },
  SWY_ERR_NO_ROUTE: { status: 404, body: 'Not Found' },
  SWY_ERR_BAD_REQUEST: { status: 400, body: 'Bad Request' },
  // RFC 9110 section 15.5.14.
  SWY_ERR_BODY_TOO_LARGE: { status: 413, body: 'Content Too Large' },
  SWY_ERR_VERSION_NOT_SUPPORTED: { status: 505, body: 'HTTP Version Not Supported' },
  SWY_ERR_INTERNAL: { status: 500, body: 'Internal Server Error' },
};

/** The HTTP status and plain-text body a client gets for an error code. */
export function httpErrorFor(code: ErrorCode): HttpMapping {
  return httpByCode[code];
}

/** Exit codes of the CLI. */
export const ExitCodes = { ok: 0, failure: 1, usage: 2 } as const;
