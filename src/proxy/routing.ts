import type { Upstream } from '../upstream/upstream.js';
import type { ProxyContext } from './context.js';
import { decodedTarget } from './normalise-path.js';

/** Routing: the listener's host and path rules (the snapshot's Router) pick the request's upstream. */

/** No route matches: 404. */
export const noRoute = null;
/** The path, as a backend that decodes it would read it, leaves the route (or climbs above the root): 400. */
export const ambiguousRoute = 0;

/** The upstream for a validated `host` and a normalised `target`, or noRoute, or ambiguousRoute. */
export function routeRequest(ctx: ProxyContext, host: string, target: string): Upstream | typeof noRoute | typeof ambiguousRoute {
  const router = ctx.runtime.snapshot.router;
  const upstream = router.route(host, target);
  if (ctx.limits.ambiguousPaths === 'keep') {
    // A backend may decode the kept forms: read that way, the path must stay under the root and the route.
    const decoded = decodedTarget(target);
    if (decoded === null || (decoded !== target && router.route(host, decoded) !== upstream)) return ambiguousRoute;
  }
  return upstream;
}
