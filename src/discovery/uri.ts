import { ConfigError } from '../errors.js';

/** The `discover:` section one `--discover URI` stands for (the config schema then checks its fields). */
export type DiscoverInput =
  | { readonly dns: { readonly name: string; readonly type: 'A' | 'AAAA' | 'SRV'; readonly port?: number; readonly servers?: string[]; readonly scheme?: string } }
  | { readonly kubernetes: { readonly namespace?: string; readonly service: string; readonly port?: number | string } }
  | { readonly consul: { readonly service: string; readonly datacenter?: string; readonly address?: string; readonly scheme?: string } };

const forms = 'dns://NAME:PORT, dns+srv://NAME, k8s://[NAMESPACE/]SERVICE[:PORT] or consul://SERVICE';

/**
 * `--discover` URIs for the common cases: `dns://NAME:PORT` (A records; `?type=AAAA`,
 * `?server=IP[:PORT]`), `dns+srv://_http._tcp.NAME` (`?server=`), `k8s://NAMESPACE/SERVICE:PORT`
 * (port name or number; namespace and port optional), `consul://SERVICE` (`?dc=`, `?address=`);
 * `?scheme=https` on the DNS and Consul forms for backends that serve TLS.
 */
export function parseDiscoverUri(text: string): DiscoverInput {
  const bad = (why: string): ConfigError => new ConfigError(`--discover: "${text}" ${why} (use ${forms})`);
  const match = /^([a-z0-9+]+):\/\/([^?]*)(?:\?(.*))?$/i.exec(text);
  if (match === null) throw bad('is not a discovery URI');
  const scheme = (match[1] as string).toLowerCase();
  const rest = match[2] as string;
  const query = new URLSearchParams(match[3] ?? '');
  const allow = (...names: string[]): void => {
    for (const key of query.keys()) if (!names.includes(key)) throw bad(`has an unknown parameter "${key}"${names.length === 0 ? '' : ` (known: ${names.join(', ')})`}`);
  };
  const servers = (): { servers?: string[] } => (query.has('server') ? { servers: query.getAll('server') } : {});
  // The backends' scheme (the schema checks the value): DNS and Consul do not say which serve TLS.
  const backendScheme = (): { scheme?: string } => (query.has('scheme') ? { scheme: query.get('scheme') as string } : {});
  if (scheme === 'dns') {
    allow('type', 'server', 'scheme');
    const hostPort = /^([^/:]+):(\d+)$/.exec(rest);
    if (hostPort === null) throw bad('needs a name and a port');
    const type = query.get('type')?.toUpperCase() ?? 'A';
    if (type !== 'A' && type !== 'AAAA') throw bad(`has type "${type}": A or AAAA (for SRV use dns+srv://)`);
    return { dns: { name: hostPort[1] as string, type, port: Number(hostPort[2]), ...servers(), ...backendScheme() } };
  }
  if (scheme === 'dns+srv') {
    allow('server', 'scheme');
    if (!/^[^/:]+$/.test(rest)) throw bad('needs a name and nothing else (SRV records carry the ports)');
    return { dns: { name: rest, type: 'SRV', ...servers(), ...backendScheme() } };
  }
  if (scheme === 'k8s' || scheme === 'kubernetes') {
    allow();
    const parts = /^(?:([^/:]+)\/)?([^/:]+)(?::([^/:]+))?$/.exec(rest);
    if (parts === null) throw bad('needs [NAMESPACE/]SERVICE[:PORT]');
    const port = parts[3];
    return { kubernetes: { ...(parts[1] === undefined ? {} : { namespace: parts[1] }), service: parts[2] as string, ...(port === undefined ? {} : { port: /^\d+$/.test(port) ? Number(port) : port }) } };
  }
  if (scheme === 'consul') {
    allow('dc', 'address', 'scheme');
    if (!/^[^/:]+$/.test(rest)) throw bad('needs a service name');
    const dc = query.get('dc');
    const address = query.get('address');
    return { consul: { service: rest, ...(dc === null ? {} : { datacenter: dc }), ...(address === null ? {} : { address }), ...backendScheme() } };
  }
  throw bad(`has an unknown scheme "${scheme}"`);
}
