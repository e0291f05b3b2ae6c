import type { Socket } from 'node:net';
import type { BackendDispatchHandler } from '../dispatcher.js';
import { RequestLengthMismatchError } from '../client-errors.js';
import { lastChunk } from './request-head.js';

/** What the body writer needs of the connection it writes on. */
export interface BodyTarget {
  readonly socket: Socket;
  /** The attempt on the connection now (null: none); `attempt` counts the attempts it carried. */
  readonly handler: BackendDispatchHandler | null;
  readonly attempt: number;
  /** The iterator being written, so an abort can stop it. */
  bodyIterator: AsyncIterator<Buffer> | null;
  /** Some of the request went out. */
  written: boolean;
  /** Resolves on the socket's next 'drain', or when the attempt ends. */
  drained(): Promise<void>;
  /** The whole body is on the wire. */
  requestSent(): void;
  abortRequest(err?: Error): void;
}

/**
 * Sends the request `head` with the first chunk of a streamed body (as undici does: a body that
 * fails before its first byte sends nothing), then the rest with the socket's backpressure: as
 * declared by Content-Length (`declared` ≥ 0; longer or shorter is an error, as undici's
 * RequestContentLengthMismatch), or chunked (RFC 9112 §7.1) ending with the client's trailers.
 * Stops as soon as the attempt is over, leaving the client's stream to its owner (the
 * iterator's return(), never destroy).
 */
export async function writeStreamedBody(conn: BodyTarget, head: string, body: AsyncIterable<Buffer | string>, declared: number, trailersFrom: { readonly trailers: NodeJS.Dict<string> } | null | undefined): Promise<void> {
  const socket = conn.socket;
  const chunked = declared < 0;
  let sent = 0;
  // The exchange stays the handler of its retries: the attempt number tells this one apart.
  const attempt = conn.attempt;
  try {
    const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
    conn.bodyIterator = iterator as AsyncIterator<Buffer>;
    for (;;) {
      const step = await iterator.next();
      if (conn.handler === null || conn.attempt !== attempt) return;
      if (step.done === true) break;
      const chunk = typeof step.value === 'string' ? Buffer.from(step.value) : step.value;
      if (chunk.length === 0) continue;
      sent += chunk.length;
      if (!chunked && sent > declared) throw new RequestLengthMismatchError(declared, sent);
      let more: boolean;
      const first = !conn.written;
      conn.written = true;
      if (first || chunked) socket.cork();
      if (first) socket.write(head, 'latin1');
      if (chunked) {
        socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        socket.write(chunk);
        more = socket.write('\r\n', 'latin1');
      } else {
        more = socket.write(chunk);
      }
      if (first || chunked) socket.uncork();
      if (!more) {
        await conn.drained();
        if (conn.handler === null || conn.attempt !== attempt) return;
      }
    }
    if (!chunked && sent !== declared) throw new RequestLengthMismatchError(declared, sent);
    conn.bodyIterator = null;
    const end = chunked ? lastChunk(trailersFrom?.trailers) : '';
    socket.write(conn.written ? end : head + end, 'latin1');
    conn.written = true;
    conn.requestSent();
  } catch (err) {
    if (conn.handler !== null && conn.attempt === attempt) conn.abortRequest(err as Error);
  }
}
