import diagnosticsChannel from 'node:diagnostics_channel';
import type { Backend } from './upstream/backend.js';

/**
 * Typed diagnostics channels. Observers (logs, metrics, tests) subscribe; the request path
 * only publishes when someone listens (`hasSubscribers`), so an unobserved event costs nothing.
 */
export interface BackendStateEvent {
  readonly backend: Backend;
  readonly available: boolean;
  /** Which down reason changed. */
  readonly reason: string;
}

export interface AttemptEvent {
  readonly backend: Backend;
  readonly method: string;
  /** `response`, `connect`, `reset`, `timeout`, `protocol` or `aborted` */
  readonly outcome: string;
  readonly status: number;
  readonly error: Error | undefined;
}

export const backendStateChannel = diagnosticsChannel.channel('switchyard:backend:state');
export const attemptChannel = diagnosticsChannel.channel('switchyard:attempt');

export function publishBackendState(event: BackendStateEvent): void {
  if (backendStateChannel.hasSubscribers) backendStateChannel.publish(event);
}
