/**
 * A stream the backend did not process (RFC 9113 §8.7): refused with RST_STREAM REFUSED_STREAM,
 * above the last-stream-id of its GOAWAY (§6.8), or never sent because the connection went away.
 * Sending it again is as safe as a request that never connected, whatever its method.
 */
export class UnprocessedStreamError extends Error {
  readonly code = 'SWY_ERR_UPSTREAM_UNPROCESSED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnprocessedStreamError';
  }
}

/** The backend reset a stream or ended it before its response was complete. */
export class StreamResetError extends Error {
  readonly code = 'SWY_ERR_UPSTREAM_STREAM_RESET';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StreamResetError';
  }
}
