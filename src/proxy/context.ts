import type { Logger } from '../log.js';
import type { Router } from '../router.js';
import type { DownstreamLimits } from '../server/limits.js';
import type { Upstream } from '../upstream/upstream.js';
import type { ForwardingOptions } from './headers.js';
import type { TrustedProxies } from './trusted.js';

/** A WebSocket tunnel (tunnel.ts), open or in its handshake; the listener closes what is left on shutdown. */
export interface OpenTunnel {
  destroy(): void;
}

/** A listener's WebSocket tunnel figures: open now (past their 101), opened since start, bytes each way. */
export interface TunnelCounts {
  open: number;
  total: number;
  /** Client to backend. */
  bytesIn: number;
  bytesOut: number;
}

/** What the request path needs from the listener it serves; one per listener. */
export interface ProxyContext {
  /** Where the current routing table is read from, once per request (a reload swaps the snapshot). */
  readonly runtime: { readonly snapshot: { readonly router: Router } };
  readonly logger: Logger;
  /** Where access-log lines go; null when the access log is off. */
  accessLog: Logger | null;
  /** Peers whose forwarding headers are believed (the listener's trustedProxies); null: none. */
  readonly trusted: TrustedProxies | null;
  /** The upstream's forwarding options with this listener's trusted proxies, built once per upstream. */
  readonly forwarding: WeakMap<Upstream, ForwardingOptions>;
  /** Client-facing limits of the listener (body size here; the rest are the listener's). */
  readonly limits: DownstreamLimits;
  /** Our entry in the Via field of responses, e.g. `1.1 switchyard`. */
  readonly responseVia: string;
  /** `http` or `https`: the scheme clients used, for X-Forwarded-Proto. */
  readonly proto: string;
  /** A cleartext listener with `redirectHttps`: every request gets a 308 to its https:// URL. */
  readonly redirectHttps: boolean;
  /** Responses not yet closed; the listener waits for 0 on shutdown. */
  active: number;
  /** WebSocket tunnels open or in their handshake; shutdown closes them after the grace period. */
  readonly tunnels: Set<OpenTunnel>;
  /** This listener's tunnel figures, for the admin API, the dashboard and /metrics. */
  readonly tunnelCounts: TunnelCounts;
  /** Set when shutting down: responses ask clients to close their connections. */
  closing: boolean;
  /** Called whenever `active` drops, so shutdown can notice 0. */
  onIdle: (() => void) | null;
}

/** Header rewriting for requests from this listener to this upstream (cached: no per-request object). */
export function forwardingFor(ctx: ProxyContext, upstream: Upstream): ForwardingOptions {
  let options = ctx.forwarding.get(upstream);
  if (options === undefined) {
    options = { ...upstream.forwarding, trusted: ctx.trusted };
    ctx.forwarding.set(upstream, options);
  }
  return options;
}
