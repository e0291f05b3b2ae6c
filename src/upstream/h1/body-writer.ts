import type { Socket } from 'node:net';
import type { BackendDispatchHandler } from '../dispatcher.js';
import { RequestLengthMismatchError } from './errors.js';
import { lastChunk } from './request-head.js';

/** What the body writer needs of the connection it writes on. */
export interface BodyTarget {
  readonly socket: Socket;
  /** The attempt on the connection now; another value means this body's attempt is over. */
  readonly handler: BackendDispatchHandler | null;
  /** The iterator being written, so an abort can stop it. */
  bodyIterator: AsyncIterator<Buffer> | null;
  /** Resolves on the socket's next 'drain', or when the attempt ends. */
  drained(): Promise<void>;
  /** The whole body is on the wire. */
  requestSent(): void;
  abortRequest(err?: Error): void;
}

/**
 * Streams a request body with the socket's backpressure: as declared by Content-Length
 * (`declared` ≥ 0; longer or shorter is an error, as undici's RequestContentLengthMismatch), or
 * chunked (RFC 9112 §7.1) ending with the client's trailers. Stops as soon as the attempt is
 * over, leaving the client's stream to its owner (the iterator's return(), never destroy).
 */
export async function writeStreamedBody(conn: BodyTarget, handler: BackendDispatchHandler, body: AsyncIterable<Buffer | string>, declared: number, trailersFrom: { readonly trailers: NodeJS.Dict<string> } | null | undefined): Promise<void> {
  const socket = conn.socket;
  const chunked = declared < 0;
  let sent = 0;
  try {
    const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
    conn.bodyIterator = iterator as AsyncIterator<Buffer>;
    for (;;) {
      const step = await iterator.next();
      if (conn.handler !== handler) return;
      if (step.done === true) break;
      const chunk = typeof step.value === 'string' ? Buffer.from(step.value) : step.value;
      if (chunk.length === 0) continue;
      sent += chunk.length;
      if (!chunked && sent > declared) throw new RequestLengthMismatchError(declared, sent);
      let more: boolean;
      if (chunked) {
        socket.cork();
        socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        socket.write(chunk);
        more = socket.write('\r\n', 'latin1');
        socket.uncork();
      } else {
        more = socket.write(chunk);
      }
      if (!more) {
        await conn.drained();
        if (conn.handler !== handler) return;
      }
    }
    if (!chunked && sent !== declared) throw new RequestLengthMismatchError(declared, sent);
    conn.bodyIterator = null;
    if (chunked) socket.write(lastChunk(trailersFrom?.trailers), 'latin1');
    conn.requestSent();
  } catch (err) {
    if (conn.handler === handler) conn.abortRequest(err as Error);
  }
}
