/**
 * A streamed request body for an HTTP/2 backend. undici 7 holds a request whose body is a stream
 * or an async iterable back until its connection has no other stream in flight (client-h2.js
 * `busy`), so one long upload or gRPC call would stall every request queued behind it on that
 * connection. Handed over as a Blob-like whose stream() is the body, it is sent at once as one
 * more stream, and undici writes it chunk by chunk with backpressure exactly as an iterable.
 */
export class MultiplexedBody {
  readonly body: AsyncIterable<Buffer>;

  constructor(body: AsyncIterable<Buffer>) {
    this.body = body;
  }

  get [Symbol.toStringTag](): string {
    return 'Blob';
  }

  stream(): AsyncIterable<Buffer> {
    return this.body;
  }
}
