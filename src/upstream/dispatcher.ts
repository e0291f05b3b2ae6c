import type { Dispatcher } from 'undici';

/**
 * What a backend's connection pool offers the attempt loop and the tunnel: one attempt per
 * dispatch, reported to a handler with undici's dispatch-handler callbacks (onConnect, onHeaders,
 * onData, onComplete, onError, onUpgrade). undici's Pool is one; Switchyard's own clients are others.
 */
export interface BackendDispatcher {
  dispatch(options: BackendDispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  /** Lets the requests in flight finish, then closes every connection. */
  close(): Promise<void>;
  /** Open connections, requests waiting for one (pending) and requests on the wire (running). */
  readonly stats: { readonly connected: number; readonly pending: number; readonly running: number };
  /** Closes every connection now; the requests in flight fail with `err`. */
  destroy(err?: Error | null): Promise<void>;
}

/** undici's dispatch options, and what Switchyard's own clients read besides. */
export interface BackendDispatchOptions extends Dispatcher.DispatchOptions {
  /**
   * The client's request: once the body has been sent, its `trailers` (which node:http and
   * node:http2 fill in at the end of the body) go upstream where the protocol can carry them.
   */
  trailersFrom?: { readonly trailers: NodeJS.Dict<string> } | null;
}
