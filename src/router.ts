import type { Upstream } from './upstream/upstream.js';

export interface RouteSpec {
  /** Host name to match (case-insensitive, without port); undefined matches any host. */
  readonly host?: string | undefined;
  /** Path prefix to match; undefined matches any path. */
  readonly pathPrefix?: string | undefined;
  readonly upstream: Upstream;
}

interface CompiledRoute {
  readonly host: string | null;
  readonly pathPrefix: string;
  readonly upstream: Upstream;
}

/** `host` without its port (`[::1]:80` → `[::1]`); `host` itself when it has none. */
function withoutPort(host: string): string {
  const end = host.charCodeAt(0) === 91 /* [ */ ? host.indexOf(']') + 1 : host.indexOf(':');
  return end <= 0 || end === host.length ? host : host.slice(0, end);
}

/** The Host header's value, '' when absent. */
export function hostHeader(raw: readonly string[]): string {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') return raw[i + 1] as string;
  }
  return '';
}

/**
 * Host and path-prefix table, compiled once per snapshot. Routes naming a host are tried before
 * routes for any host (as nginx picks a server block before a location); within each group the
 * longest path prefix wins, and on a tie the route written first. Prefixes match as plain string
 * prefixes: end one with `/` to match whole path segments only.
 */
export class Router {
  private readonly routes: readonly CompiledRoute[];

  constructor(routes: readonly RouteSpec[]) {
    const compiled = routes.map((route, order) => ({
      // As requestHost() normalises a request's host: lower-cased, one trailing dot dropped.
      host: route.host === undefined ? null : route.host.toLowerCase().replace(/(?<=.)\.$/, ''),
      pathPrefix: route.pathPrefix ?? '',
      upstream: route.upstream,
      order,
    }));
    compiled.sort((a, b) => Number(a.host === null) - Number(b.host === null) || b.pathPrefix.length - a.pathPrefix.length || a.order - b.order);
    this.routes = compiled.map(({ host, pathPrefix, upstream }) => ({ host, pathPrefix, upstream }));
  }

  /**
   * The upstream for a request, or null when no route matches. `host` is the request's validated
   * host (proxy/request-host.ts `requestHost`: lower-cased, port optional, '' for none, which
   * matches only routes for any host); `path` its normalised target.
   */
  route(host: string, path: string): Upstream | null {
    const routes = this.routes;
    // One route for everything (the flags' config): no parsing at all.
    if (routes.length === 1) {
      const only = routes[0] as CompiledRoute;
      if (only.host === null && only.pathPrefix === '') return only.upstream;
    }
    let name: string | null = null;
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i] as CompiledRoute;
      if (route.host !== null) {
        name ??= withoutPort(host);
        if (route.host !== name) continue;
      }
      if (route.pathPrefix === '' || path.startsWith(route.pathPrefix)) return route.upstream;
    }
    return null;
  }
}
