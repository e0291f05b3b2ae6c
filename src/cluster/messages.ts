import type { BackendFigures, ListenerTunnelFigures } from '../admin/worker-figures.js';
import type { Config } from '../config/schema.js';
import type { DiscoveredBackend } from '../discovery/source.js';
import type { LogFormat } from '../log.js';
import { DownReason } from '../upstream/backend.js';

/**
 * The control-plane messages between the primary and its workers (IPC with the `advanced`
 * serialization, so a Config's Infinity and Maps cross intact). Per-request work never crosses.
 */

/** A backend's down-reason bits as the primary holds them. */
export interface BackendState {
  readonly upstream: string;
  readonly url: string;
  readonly bits: number;
}

/** A listener as a worker bound it, for the primary's start line and the admin API. */
export interface ListenerAddress {
  readonly address: string;
  readonly port: number;
  readonly url: string;
}

/** The answer to each kind of question the primary asks every worker. */
export interface Answers {
  /** prom-client's getMetricsAsJSON() of the worker's registry. */
  readonly metrics: unknown[];
  readonly figures: BackendFigures[];
  /** Each listener's WebSocket tunnel figures in this worker. */
  readonly listeners: ListenerTunnelFigures[];
  /** Nothing: the answer shows every message sent before it has been handled. */
  readonly ping: null;
}
export type Question = keyof Answers;

/** The discovered sets in force, by upstream: a worker runs no discovery source (docs/workers.md). */
export type DiscoveredSetList = readonly (readonly [string, readonly DiscoveredBackend[]])[];

export type ToWorker =
  | { readonly type: 'swy:init'; readonly workerId: number; readonly workers: number; readonly config: Config; readonly secrets: readonly [string, string][]; readonly states: readonly BackendState[]; readonly discovered: DiscoveredSetList; readonly logFormat: LogFormat | undefined }
  /** A set the primary's discovery applied to `upstream`, with the states of its backends then. */
  | { readonly type: 'swy:discovered'; readonly upstream: string; readonly set: readonly DiscoveredBackend[]; readonly states: readonly BackendState[] }
  | { readonly type: 'swy:apply'; readonly id: number; readonly config: Config; readonly secrets: readonly [string, string][]; readonly source: string }
  | { readonly type: 'swy:state'; readonly states: readonly BackendState[] }
  | { readonly type: 'swy:ask'; readonly id: number; readonly question: Question }
  | { readonly type: 'swy:stop'; readonly graceMs: number };

export type ToPrimary =
  | { readonly type: 'swy:hello' }
  | { readonly type: 'swy:ready'; readonly digest: string; readonly listeners: readonly ListenerAddress[] }
  | { readonly type: 'swy:failed'; readonly error: string; readonly usage: boolean }
  | { readonly type: 'swy:applied'; readonly id: number; readonly ok: boolean; readonly error: string; readonly digest: string; readonly ignored: readonly string[] }
  | { readonly type: 'swy:report'; readonly upstream: string; readonly url: string; readonly bits: number }
  | { readonly type: 'swy:answer'; readonly id: number; readonly value: unknown };

/** Down reasons a worker decides from its own traffic (failed attempts, outlier ejection) and reports. */
export const workerDecidedReasons = DownReason.failedAttempts | DownReason.ejected;

export function isMessage<T extends { type: string }>(message: unknown): message is T {
  return typeof message === 'object' && message !== null && typeof (message as { type?: unknown }).type === 'string' && (message as { type: string }).type.startsWith('swy:');
}
