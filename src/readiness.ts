import type { Readiness } from './admin/server.js';

/** What GET /ready is made of (issue 13); each part is set by whoever knows it. */
export interface ReadinessParts {
  /** The process got SIGTERM (or close()) and is draining: take it out of rotation. */
  readonly draining: boolean;
  /** Every configured listener is bound. */
  readonly listening: boolean;
  /** The first round of active health checks has finished (so the first requests go to backends known up). */
  readonly firstHealthRoundDone: boolean;
  /** Upstreams with a discovery source that has not yet delivered its first update. */
  readonly awaitingDiscovery: readonly string[];
}

/** The first reason not to be ready, in the order an operator would look for it; ok when there is none. */
export function readinessOf(parts: ReadinessParts): Readiness {
  if (parts.draining) return { ok: false, reason: 'shutting down: draining in-flight requests' };
  if (!parts.listening) return { ok: false, reason: 'starting: listeners not bound yet' };
  if (!parts.firstHealthRoundDone) return { ok: false, reason: 'starting: first health-check round not finished' };
  if (parts.awaitingDiscovery.length > 0) return { ok: false, reason: `starting: waiting for the first discovery update of ${parts.awaitingDiscovery.join(', ')}` };
  return { ok: true, reason: 'ready' };
}
