import type { DiscoveredBackend } from './source.js';

/** The fields of a `discovery.k8s.io/v1` EndpointSlice that discovery reads; the rest is ignored. */
export interface EndpointSlice {
  readonly metadata?: { readonly name?: string; readonly resourceVersion?: string } | null;
  readonly addressType?: string;
  readonly endpoints?: readonly Endpoint[] | null;
  readonly ports?: readonly EndpointPort[] | null;
}

export interface Endpoint {
  readonly addresses?: readonly string[] | null;
  readonly conditions?: {
    readonly ready?: boolean | null;
    readonly serving?: boolean | null;
    readonly terminating?: boolean | null;
  } | null;
}

export interface EndpointPort {
  readonly name?: string | null;
  readonly port?: number | null;
  readonly protocol?: string | null;
  readonly appProtocol?: string | null;
}

/** A port name, a port number, or none (take the slice's only TCP port). */
export type PortSelector = string | number | undefined;

/**
 * `8080` and `"8080"` select by number: a Kubernetes port name must contain a letter
 * (IANA_SVC_NAME), so an all-digit string cannot be one.
 */
export function portSelector(port: string | number | undefined): PortSelector {
  if (typeof port === 'string' && /^[0-9]+$/.test(port)) return Number(port);
  return port;
}

/** appProtocol values that mean TLS to the backend; any other value (or none) means cleartext HTTP. */
const tlsAppProtocols = new Set(['https', 'wss', 'kubernetes.io/wss']);

type PortChoice = { readonly port: number; readonly tls: boolean } | { readonly problem: string };

function choosePort(slice: EndpointSlice, selector: PortSelector): PortChoice {
  const name = slice.metadata?.name ?? '(unnamed)';
  // Port `protocol` defaults to TCP; UDP and SCTP ports are never HTTP backends.
  const ports = (slice.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP' && typeof p.port === 'number');
  const choose = (p: EndpointPort): PortChoice => ({ port: p.port as number, tls: tlsAppProtocols.has((p.appProtocol ?? '').toLowerCase()) });
  if (typeof selector === 'number') {
    const match = ports.find((p) => p.port === selector);
    if (match !== undefined) return choose(match);
    // A slice that lists no ports (a headless Service without ports) serves on every port.
    if ((slice.ports ?? []).length === 0) return { port: selector, tls: false };
    return { problem: `EndpointSlice ${name} has no TCP port ${selector} (it has ${listPorts(ports)})` };
  }
  if (typeof selector === 'string') {
    const match = ports.find((p) => p.name === selector);
    return match !== undefined ? choose(match) : { problem: `EndpointSlice ${name} has no TCP port named "${selector}" (it has ${listPorts(ports)})` };
  }
  const only = ports[0];
  if (ports.length === 1 && only !== undefined) return choose(only);
  if (ports.length === 0) return { problem: `EndpointSlice ${name} lists no TCP port: set port to a number` };
  return { problem: `EndpointSlice ${name} has several ports (${listPorts(ports)}): set port to one name or number` };
}

function listPorts(ports: readonly EndpointPort[]): string {
  if (ports.length === 0) return 'none';
  return ports.map((p) => (p.name ? `${p.name}=${p.port}` : String(p.port))).join(', ');
}

/** The merged backends of a set of slices, or the reasons some slice could not be read. */
export interface MergedSlices {
  /** Sorted by URL. */
  readonly backends: DiscoveredBackend[];
  /** One line per slice with endpoints but no usable port; non-empty means: do not apply `backends`. */
  readonly problems: string[];
}

/**
 * One backend per address of every endpoint that is ready (serves) or terminating (drains);
 * endpoints neither ready nor terminating are left out. `ready` unset counts as ready, as the
 * EndpointSlice API documents. An address in two slices (a move between slices) counts once,
 * ready winning over terminating.
 */
export function mergeSlices(slices: Iterable<EndpointSlice>, selector: PortSelector): MergedSlices {
  const byUrl = new Map<string, DiscoveredBackend>();
  const problems: string[] = [];
  for (const slice of slices) {
    const endpoints = slice.endpoints ?? [];
    if (endpoints.length === 0) continue;
    const choice = choosePort(slice, selector);
    if ('problem' in choice) {
      problems.push(choice.problem);
      continue;
    }
    const scheme = choice.tls ? 'https' : 'http';
    for (const endpoint of endpoints) {
      const terminating = endpoint.conditions?.terminating === true;
      const ready = endpoint.conditions?.ready !== false;
      if (!terminating && !ready) continue;
      for (const address of endpoint.addresses ?? []) {
        const host = address.includes(':') ? `[${address}]` : address;
        const url = `${scheme}://${host}:${choice.port}`;
        const known = byUrl.get(url);
        if (known !== undefined && !known.terminating) continue;
        byUrl.set(url, { url, weight: 1, terminating: terminating });
      }
    }
  }
  const backends = [...byUrl.values()].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
  return { backends, problems };
}

/** A string equal for equal sets, to report only changes. */
export function setKey(backends: readonly DiscoveredBackend[]): string {
  return backends.map((b) => `${b.url}${b.terminating ? '~' : ''}`).join(' ');
}
