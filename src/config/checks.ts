import { parseBackendUrl } from '../upstream/backend.js';
import { ConfigError } from '../errors.js';

/**
 * Checks across fields that start-up would otherwise only find when it builds the runtime or
 * opens a socket. The schema runs them, so `validate`, `--config`, reload and `start()` refuse
 * the same configs with the same words, each problem at the node that causes it.
 */

export type IssuePath = readonly (string | number)[];
export type Report = (path: IssuePath, message: string) => void;

/** The parts of a validated config these checks read. */
export interface CheckedConfig {
  readonly listeners: readonly { readonly host?: string | undefined; readonly port: number }[];
  readonly routes: readonly { readonly host?: string | undefined; readonly pathPrefix?: string | undefined }[];
  readonly upstreams: Readonly<Record<string, { readonly backends?: readonly (string | { readonly url: string })[] | undefined; readonly discover?: object | undefined }>>;
  readonly admin: false | { readonly host: string; readonly port: number; readonly token?: string | undefined };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Why a public admin listener would be refused, or null. `env` is read for $SWITCHYARD_ADMIN_TOKEN. */
export function adminTokenProblem(admin: { readonly host: string; readonly token?: string | undefined }, env: NodeJS.ProcessEnv = process.env): string | null {
  const token = admin.token ?? (env['SWITCHYARD_ADMIN_TOKEN'] || undefined);
  if (token === undefined && !isLoopback(admin.host)) return `admin listener on ${admin.host} is not loopback: set admin.token or SWITCHYARD_ADMIN_TOKEN`;
  return null;
}

/** The admin token from config or $SWITCHYARD_ADMIN_TOKEN; refuses a public listener without one. */
export function adminToken(admin: { readonly host: string; readonly token?: string | undefined }): string | undefined {
  const problem = adminTokenProblem(admin);
  if (problem !== null) throw new ConfigError(problem);
  return admin.token ?? (process.env['SWITCHYARD_ADMIN_TOKEN'] || undefined);
}

/** A bind address as compared for overlap: lower-cased, brackets dropped; '*' for every interface. */
function bindHost(host: string | undefined): string {
  const bare = (host ?? '').toLowerCase().replace(/^\[|\]$/g, '');
  return bare === '' || bare === '0.0.0.0' || bare === '::' ? '*' : bare;
}

/** Two binds on one port collide when the hosts are equal or either is every interface (EADDRINUSE). */
function overlaps(a: string, b: string): boolean {
  return a === b || a === '*' || b === '*';
}

const shownBind = (host: string, port: number): string => `${host.includes(':') ? `[${host}]` : host}:${port}`;

export function crossFieldChecks(config: CheckedConfig, report: Report): void {
  // Listeners, and the admin listener, must not share an address; port 0 picks a free one each.
  const binds: { host: string; port: number; index: number }[] = [];
  config.listeners.forEach((listener, index) => {
    if (listener.port === 0) return;
    const host = bindHost(listener.host);
    const other = binds.find((b) => b.port === listener.port && overlaps(b.host, host));
    if (other !== undefined) report(['listeners', index, 'port'], `${shownBind(host, listener.port)} overlaps listeners.${other.index} (${shownBind(other.host, other.port)})`);
    else binds.push({ host, port: listener.port, index });
  });
  const admin = config.admin;
  if (admin !== false) {
    const problem = adminTokenProblem(admin);
    if (problem !== null) report(['admin', 'host'], problem);
    // Reported at the listener: the admin section is often left to its defaults, so not in the file.
    const host = bindHost(admin.host);
    const other = admin.port === 0 ? undefined : binds.find((b) => b.port === admin.port && overlaps(b.host, host));
    if (other !== undefined) {
      report(['listeners', other.index, 'port'], `${shownBind(other.host, other.port)} overlaps the admin listener ${shownBind(host, admin.port)}: give one of them another port`);
    }
  }

  // A backend is its normalised URL: `http://a:1` and `http://a:1/` are one backend.
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    // Either a fixed list or a discovery source (issue 13), never both.
    if (upstream.backends === undefined && upstream.discover === undefined) report(['upstreams', name], 'needs backends (a list) or discover (a source)');
    if (upstream.backends !== undefined && upstream.discover !== undefined) report(['upstreams', name, 'discover'], 'give backends or discover, not both');
    const seen = new Map<string, number>();
    (upstream.backends ?? []).forEach((backend, index) => {
      const text = typeof backend === 'string' ? backend : backend.url;
      let url: string;
      try {
        url = parseBackendUrl(text).url;
      } catch {
        return; // the field's own check reports it
      }
      const first = seen.get(url);
      if (first !== undefined) report(['upstreams', name, 'backends', index], `backend ${url} is listed twice in upstream "${name}" (also backends.${first})`);
      else seen.set(url, index);
    });
  }

  // Hosts match case-insensitively, so routes differing only in case (or not at all) are one route.
  const routes = new Map<string, number>();
  config.routes.forEach((route, index) => {
    const key = `${route.host?.toLowerCase() ?? '*'} ${route.pathPrefix ?? ''}`;
    const first = routes.get(key);
    if (first !== undefined) {
      const what = `${route.host === undefined ? 'any host' : `host "${route.host.toLowerCase()}"`}${route.pathPrefix === undefined ? '' : `, pathPrefix "${route.pathPrefix}"`}`;
      report(['routes', index], `same route as routes.${first} (${what}; hosts match in any case): routes.${index} would never be used`);
    } else routes.set(key, index);
  });
}
