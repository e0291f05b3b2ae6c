import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';

/**
 * What a backend's connection pool offers the attempt loop and the tunnel: one attempt per
 * dispatch, reported to a handler with undici's dispatch-handler callbacks (onConnect, onHeaders,
 * onData, onComplete, onError, onUpgrade). undici's Pool is one; Switchyard's own clients are others.
 */
export interface BackendDispatcher {
  dispatch(options: BackendDispatchOptions, handler: BackendDispatchHandler): boolean;
  /** Lets the requests in flight finish, then closes every connection. */
  close(): Promise<void>;
  /** Open connections, requests waiting for one (pending) and requests on the wire (running). */
  readonly stats: { readonly connected: number; readonly pending: number; readonly running: number };
  /** Closes every connection now; the requests in flight fail with `err`. */
  destroy(err?: Error | null): Promise<void>;
}

/**
 * undici's dispatch options, and what Switchyard's own clients read besides. Their `body` may
 * also be an array of Buffers: a body read whole, in the chunks it arrived in.
 */
export interface BackendDispatchOptions extends Dispatcher.DispatchOptions {
  /**
   * The client's request: once the body has been sent, its `trailers` (which node:http and
   * node:http2 fill in at the end of the body) go upstream where the protocol can carry them.
   */
  trailersFrom?: { readonly trailers: NodeJS.Dict<string> } | null;
}

/**
 * Response fields as a flat [name, value, …] list. Switchyard's clients give strings with lower-cased
 * names (upstream/h1 folds them, HTTP/2 names are lower-case by RFC 9113 §8.2.1); a Buffer name
 * is taken as the backend spelled it.
 */
export type RawFields = readonly (Buffer | string)[];

/** The legacy undici dispatch-handler callbacks, as the exchange and the tunnel implement them. */
export interface BackendDispatchHandler {
  /** The request starts on a connected socket; `abort()` without an error means the client went away. */
  onConnect(abort: (err?: Error) => void): void;
  /** A 1xx or the final head; false pauses the body until `resume()`. */
  onHeaders(statusCode: number, rawHeaders: RawFields, resume: () => void, statusText: string): boolean;
  /** A body chunk; false pauses until `resume()`. */
  onData(chunk: Buffer): boolean;
  onComplete(trailers: RawFields | Readonly<Record<string, string | readonly string[] | undefined>> | null): void;
  onError(err: Error): void;
  /** 101 to a dispatch with `upgrade`: the socket belongs to the handler from now on. */
  onUpgrade?(statusCode: number, rawHeaders: RawFields, socket: Socket): void;
}
