import type { Dispatcher } from 'undici';

/**
 * What a backend's connection pool offers the attempt loop and the tunnel: one attempt per
 * dispatch, reported to a handler with undici's dispatch-handler callbacks (onConnect, onHeaders,
 * onData, onComplete, onError, onUpgrade). undici's Pool is one; Switchyard's own clients are others.
 */
export interface BackendDispatcher {
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  /** Lets the requests in flight finish, then closes every connection. */
  close(): Promise<void>;
  /** Closes every connection now; the requests in flight fail with `err`. */
  destroy(err?: Error | null): Promise<void>;
}
