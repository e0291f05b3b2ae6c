import { isIP } from 'node:net';
import { z } from 'zod';
import { duration, strict } from './schema-support.js';

/** The `discover:` section of an upstream (issue 13): where its backends come from instead of `backends:`. */

const port = z.number().int().min(1).max(65535);
const hostName = z.string().regex(/^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/, 'not a DNS name');

/** A DNS server: `IP` or `IP:PORT`, IPv6 as `[IP]:PORT` (what c-ares' setServers takes). */
export function dnsServerProblem(text: string): string | null {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const hostPort = /^([^:]+):(\d+)$/.exec(text);
  const [host, portText] = bracketed !== null ? [bracketed[1] ?? '', bracketed[2]] : hostPort !== null ? [hostPort[1] ?? '', hostPort[2]] : [text, undefined];
  if (isIP(host) === 0) return `"${text}" is not an IP address (IP or IP:PORT; IPv6 as [IP]:PORT)`;
  if (portText !== undefined && !(Number(portText) >= 1 && Number(portText) <= 65535)) return `"${text}" has a port outside 1-65535`;
  return null;
}

export const dnsDiscoverySchema = strict({
  name: hostName.describe('Name to resolve, e.g. `web.internal` (A/AAAA) or `_http._tcp.web.internal` (SRV). Required.'),
  type: z.enum(['A', 'AAAA', 'SRV']).default('A').describe('Record type: `A` or `AAAA` (one backend per address, on `port`), or `SRV` (one backend per target and port, the SRV weight as its weight; targets are resolved to their A records).'),
  port: port.optional().describe('Backend port for `A` and `AAAA` (required there); SRV records carry their own.'),
  servers: z
    .array(z.string().superRefine((text, ctx) => {
      const problem = dnsServerProblem(text);
      if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
    }))
    .min(1)
    .optional()
    .describe('DNS servers to ask (`IP` or `IP:PORT`, IPv6 as `[IP]:PORT`). Default: the system\'s (/etc/resolv.conf).'),
  minInterval: duration().default(1000).describe("Shortest time between two resolutions, whatever the answer's TTL (a TTL of 0 re-resolves this often); also the retry delay after a failure."),
  maxInterval: duration().default(30_000).describe('Longest time between two resolutions, whatever the TTL.'),
  scheme: z.enum(['http', 'https']).default('http').describe('Scheme of the backend URLs: `https` for backends that serve TLS (the upstream\'s `tls` says how they are verified, e.g. `tls.ca` for a private CA).'),
}).superRefine((dns, ctx) => {
  if (dns.type !== 'SRV' && dns.port === undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: `type ${dns.type} needs a port (SRV records carry their own)` });
  if (dns.type === 'SRV' && dns.port !== undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: 'SRV records carry their own ports: remove port' });
  if (dns.minInterval > dns.maxInterval) ctx.addIssue({ code: 'custom', path: ['minInterval'], message: 'must not be more than maxInterval' });
});

export const kubernetesDiscoverySchema = strict({
  namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'not a Kubernetes namespace name').optional().describe("The Service's namespace. Default: the pod's own (the service account's `namespace` file)."),
  service: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'not a Kubernetes Service name').describe('Service whose EndpointSlices list the backends (label `kubernetes.io/service-name`). Required.'),
  port: z.union([port, z.string().min(1)], { error: 'a port is a name or a number' }).optional().describe("The EndpointSlice port: its name, or its number. Default: the slices' only port."),
  apiServer: z.url({ protocol: /^https?$/, error: 'not an http:// or https:// URL' }).optional().describe('API server URL. Default: in a pod, `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.'),
  tokenFile: z.string().min(1).optional().describe('Bearer token file, read again when it changes (token rotation). Default: `/var/run/secrets/kubernetes.io/serviceaccount/token`.'),
  caFile: z.string().min(1).optional().describe("PEM file of the CA that signs the API server's certificate. Default: `/var/run/secrets/kubernetes.io/serviceaccount/ca.crt`."),
});

export const consulDiscoverySchema = strict({
  service: z.string().min(1).describe('Consul service name. Required.'),
  address: z.url({ protocol: /^https?$/, error: 'not an http:// or https:// URL' }).default('http://127.0.0.1:8500').describe('Consul HTTP API address.'),
  token: z.string().min(1).optional().describe('ACL token (sent as `X-Consul-Token`). Default: none.'),
  datacenter: z.string().min(1).optional().describe("Datacenter to ask. Default: the agent's own."),
  passingOnly: z.boolean().default(true).describe('Only instances whose health checks all pass; `false` lists warning and critical ones too.'),
  scheme: z.enum(['http', 'https']).default('http').describe('Scheme of the backend URLs: `https` for backends that serve TLS (the upstream\'s `tls` says how they are verified, e.g. `tls.ca` for a private CA).'),
});

export const discoverySchema = strict({
  dns: dnsDiscoverySchema.optional().describe('DNS: A, AAAA or SRV records, re-resolved at their TTL.'),
  kubernetes: kubernetesDiscoverySchema.optional().describe("Kubernetes: the Service's EndpointSlices, listed and watched."),
  consul: consulDiscoverySchema.optional().describe("Consul: the service's instances, with blocking queries."),
}).superRefine((spec, ctx) => {
  const given = Object.keys(spec).filter((key) => spec[key as keyof typeof spec] !== undefined);
  if (given.length !== 1) ctx.addIssue({ code: 'custom', message: given.length === 0 ? 'needs one source: dns, kubernetes or consul' : `one source only, not ${given.join(' and ')}` });
});

export type DnsDiscoveryConfig = z.output<typeof dnsDiscoverySchema>;
export type KubernetesDiscoveryConfig = z.output<typeof kubernetesDiscoverySchema>;
export type ConsulDiscoveryConfig = z.output<typeof consulDiscoverySchema>;
export type DiscoveryConfig = z.output<typeof discoverySchema>;
/** The `discover:` section as written (durations as text or numbers). */
export type DiscoveryConfigInput = z.input<typeof discoverySchema>;
