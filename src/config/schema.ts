import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { crossFieldChecks } from './checks.js';
import { discoverySchema } from './discovery-schema.js';
import { healthDefaults, parseStatusRange } from '../health/options.js';
import { normaliseTarget } from '../proxy/normalise-path.js';
import { checkHashKey, parseHashKey } from '../upstream/hash-key.js';
import { trustedProxyProblem } from '../proxy/trusted.js';
import { parseBackendUrl } from '../upstream/backend.js';
import { BackendTlsError, loadBackendTls } from '../upstream/tls.js';
import { ListenerTlsError, loadCertificate } from '../server/tls-certificates.js';
import { configErrors, didYouMean, duration, editDistance, parsed, size, strict, unknownKeyMessage } from './schema-support.js';
import { adminSchema, workersSchema } from './process-schema.js';
import { protocolIssues, protocolSchema } from './upstream-protocol-schema.js';

export { configErrors, didYouMean, editDistance, unknownKeyMessage };

export const balancerNames = ['round-robin', 'weighted-round-robin', 'least-conn', 'p2c', 'ewma', 'random', 'ip-hash', 'ring-hash', 'maglev'] as const;
/** A balancing algorithm's name, as in `upstreams.NAME.balancer` and `start({ balancer })`. */
export type BalancerName = (typeof balancerNames)[number];

const port = z.number().int().min(0).max(65535);

/** A trustedProxies entry that is not an address or CIDR range becomes an issue at its position. */
function trustedProxyIssue(entry: string, ctx: z.core.$RefinementCtx<string>): void {
  const problem = trustedProxyProblem(entry);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: `"${entry}" is not an IP address or CIDR range: ${problem}` });
}

/** Request paths are routed in normal form (issue 9), so a prefix in another form would never match. */
function normalPrefixIssue(prefix: string, ctx: z.core.$RefinementCtx<string>): void {
  const normal = normaliseTarget(prefix, true);
  if (normal === null) ctx.addIssue({ code: 'custom', message: `"${prefix}" is not a valid path: it climbs above the root or has a malformed %-escape` });
  else if (normal !== prefix) ctx.addIssue({ code: 'custom', message: `"${prefix}" would never match: requests are routed in normal form, write "${normal}"` });
}

const pemFile = z.string().min(1, 'a file path is required');

// Files are read here, so `validate` and a reload refuse a missing or broken one with its position.
const certificateSchema = strict({
  cert: pemFile.describe('PEM certificate file (the chain after it, leaf first). Required.'),
  key: pemFile.describe('PEM private key file of `cert`. Required.'),
}).superRefine((files, ctx) => {
  try {
    loadCertificate(files, 0);
  } catch (err) {
    if (!(err instanceof ListenerTlsError)) throw err;
    ctx.addIssue({ code: 'custom', path: [err.field], message: err.detail });
  }
});

const listenerTlsSchema = strict({
  certificates: z.array(certificateSchema).min(1).describe('Certificates: each serves the DNS names of its subjectAltName (SNI, `*.example.com` wildcards included); the first also serves clients that send no name. Required.'),
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Oldest TLS version accepted; TLS 1.0 and 1.1 clients are always refused.'),
});

export const listenerSchema = strict({
  host: z.string().optional().describe('Address to bind. Default: every interface.'),
  port: port.default(3030).describe('Port to listen on; 0 picks a free port.'),
  clientKeepAlive: duration().default(60_000).describe('Idle client keep-alive connections close after this long.'),
  clientHeadersTimeout: duration().default(30_000).describe('Time a client has to send its request headers.'),
  acceptBatch: z.number().int().min(1).max(1024).default(128).describe('Connections accepted per event-loop turn at most; 1 turns batching off.'),
  trustedProxies: z
    .array(z.string().superRefine(trustedProxyIssue))
    .default([])
    .describe('Peers (IPs and CIDR ranges, IPv4 or IPv6) whose X-Forwarded-For/-Proto/-Host and Forwarded fields are kept and appended to; from any other peer they are replaced by ours. Default: none.'),
  maxHeaderSize: size().default(16 * 1024).refine((bytes) => bytes >= 1024, 'must be at least 1KiB').describe('Request line and header fields larger than this get 431 and the connection is closed.'),
  requestTimeout: duration(true).default(0).describe('Time the whole request, body included, has to arrive; 408 and close when it runs out. 0 is off, so long uploads pass.'),
  maxConnections: z.number().int().min(1).default(10_000).describe('Client connections open at once; further ones are closed as soon as they are accepted.'),
  maxBodySize: size().default(0).describe('Request bodies larger than this get 413 and the connection is closed; 0 is no limit.'),
  ambiguousPaths: z
    .enum(['reject', 'keep'])
    .default('reject')
    .describe('Paths with an encoded `/` or `\\` (`%2F`, `%5C`), a literal `\\`, or a segment that is `.` or `..` only once decoded (`%2e%2e`): `reject` answers 400; `keep` forwards them as sent, for applications that need them, and answers 400 when a backend that decodes them would read a path above the root or under another route.'),
  tls: listenerTlsSchema.optional().describe('Terminate TLS: this listener speaks HTTPS (ALPN `http/1.1`). Certificates reload when their files change and on every config reload; a broken new file keeps the old one. Relative paths are from the working directory. Default: cleartext HTTP.'),
  redirectHttps: z.boolean().default(false).describe('Answer every request with a 308 redirect to `https://` the same host and target, as Caddy does. For a cleartext listener next to an HTTPS one.'),
  http2: z.boolean().default(true).describe('With `tls`: offer HTTP/2 by ALPN (`h2`, then `http/1.1`); `false` offers HTTP/1.1 only. See [HTTP/2](http2.md).'),
  h2c: z.boolean().default(false).describe('Without `tls`: also accept HTTP/2 with prior knowledge (h2c) on this port, told from HTTP/1.1 by the connection preface. `Upgrade: h2c` is not supported. See [HTTP/2](http2.md).'),
  maxConcurrentStreams: z.number().int().min(1).max(10_000).default(100).describe('HTTP/2: streams a client may have open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS).'),
});

const routeSchema = strict({
  host: z.string().min(1).optional().describe('Match requests whose Host header is this name. Default: any host.'),
  pathPrefix: z
    .string()
    .startsWith('/')
    .superRefine(normalPrefixIssue)
    .optional()
    .describe('Match requests whose path starts with this prefix. Requests are matched in normal form (escaped unreserved characters decoded, `//` merged, `.` and `..` segments removed), so the prefix is written that way too. Default: any path.'),
  upstream: z.string().min(1).describe('Name of the upstream (a key of `upstreams`) that serves the matched requests.'),
});

/** A backend URL, checked by the same function start-up uses, so both say the same. */
const backendUrl = () =>
  z.string().superRefine((text, ctx) => {
    try {
      parseBackendUrl(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof ConfigError ? err.message : String(err) });
    }
  });

const backendSchema = z.union(
  [
    backendUrl().describe('A backend URL (`http://host:port/base`), weight 1.'),
    strict({
      url: backendUrl().describe('Backend URL (`http://` or `https://`; a path is a prefix).'),
      weight: z.number().positive().default(1).describe('Relative share of requests for weighted balancers.'),
    }),
  ],
  { error: 'a backend is a URL (http://host:port) or { url, weight }' },
);

const stickySchema = strict({
  cookie: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid cookie name').default('swy').describe('Sticky cookie name.'),
  secret: z.string().min(8, 'must be at least 8 characters').optional().describe('HMAC secret for sticky cookies. Default: random per process; set it so cookies survive restarts and work across instances.'),
  ttl: duration().refine((ms) => ms >= 1000, 'must be at least 1s (Max-Age counts seconds)').optional().describe('Sticky cookie lifetime (Max-Age). Default: a session cookie.'),
});

/** A status code or an inclusive range (`"200-399"`), parsed to `[low, high]`. */
const statusRange = z.union([z.number(), z.string(), z.tuple([z.number(), z.number()]).readonly()], { error: 'a status is a code (200) or a range ("200-399")' }).transform((value, ctx) => {
  try {
    // The tuple is the parsed form, so a loaded config can be given back (library use, reload).
    return parseStatusRange(typeof value === 'object' ? `${value[0]}-${value[1]}` : value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: err instanceof ConfigError ? err.message : String(err) });
    return z.NEVER;
  }
});

// interval, rise and fall default by type, so the schema leaves them optional and the transform
// fills them from healthDefaults (resolveHealthOptions turns the section into checker options).
const healthCheckSchema = strict({
  type: z.enum(['tcp', 'http']).default('tcp').describe('`tcp`: the check passes when a connection opens. `http`: when a request gets an expected status (and body).'),
  interval: duration().optional().meta({ 'x-default': '`20s` (tcp), `2s` (http)' }).describe('Time between checks of one backend (before jitter).'),
  jitter: z.number().min(0).max(0.5).default(0.1).describe('Each wait is the interval ± this fraction of it, drawn per check, so checks of many backends spread out. 0 to 0.5.'),
  timeout: duration().default(2000).describe('A check not finished by then (connect, and for http the status and body) fails.'),
  rise: z.number().int().min(1).max(100).optional().meta({ 'x-default': '`1` (tcp), `2` (http)' }).describe('Consecutive passes that bring a backend marked down back up.'),
  fall: z.number().int().min(1).max(100).optional().meta({ 'x-default': '`1` (tcp), `3` (http)' }).describe('Consecutive failures that mark a backend down. The first check after start applies at once.'),
  path: z.string().regex(/^\/[\x21-\x7e]*$/, 'must start with "/" and contain no spaces or control characters').default('/').describe('http: request path, absolute on the backend origin (the backend URL\'s base path is not prefixed).'),
  method: z.enum(['GET', 'HEAD']).default('GET').describe('http: request method.'),
  host: z.string().regex(/^[A-Za-z0-9._~:[\]-]+$/, 'not a host name').optional().describe("http: Host header. Default: the backend's host:port."),
  expectStatus: z.array(statusRange).min(1).prefault(['200-399']).meta({ 'x-default': '`["200-399"]`' }).describe('http: statuses that pass: codes and inclusive ranges, e.g. `[200, "300-308"]`.'),
  bodyContains: z.string().min(1).optional().describe('http: text the first 64 KiB of the response body must contain. Default: the body is not checked.'),
})
  .transform((check, ctx) => {
    if (check.method === 'HEAD' && check.bodyContains !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['bodyContains'], message: 'a HEAD response has no body: use method GET with bodyContains' });
    }
    const defaults = healthDefaults(check.type);
    return { ...check, interval: check.interval ?? defaults.intervalMs, rise: check.rise ?? defaults.rise, fall: check.fall ?? defaults.fall };
  })
  .prefault({})
  .describe('Active health checks, TCP or HTTP, of every backend (see docs/health-checks.md).');

const outlierSchema = strict({
  consecutiveFailures: z.number().int().min(0).max(1000).default(5).describe('Consecutive failed attempts (connect failure or timeout, response timeout, reset, protocol error) that eject a backend; 0 is off. Client hang-ups do not count; any response resets the count.'),
  consecutive5xx: z.number().int().min(0).max(1000).default(0).describe('Consecutive 5xx responses that eject a backend (failed attempts count too); 0 is off.'),
  baseEjectionTime: duration().default(30_000).describe('An ejection lasts this long times the number of times the backend has been ejected; the count drops by one for each such period it then stays in.'),
  maxEjectionTime: duration().default(300_000).describe('The longest one ejection lasts.'),
  maxEjectionPercent: z.number().min(0).max(100).default(10).describe("Share of the upstream's backends that may be ejected at once; one backend always may be (as in Envoy)."),
});

const queueSchema = strict({
  size: z.number().int().min(0).max(100_000).default(0).describe('Requests that may wait at once; 0 is no queue (503 at once, the default). A full queue answers 503 at once.'),
  timeout: duration().default(1000).describe('Longest wait for a slot; then 503.'),
});

// Files are read here too, so `validate` and a reload refuse a missing or broken file with its position.
const backendTlsSchema = strict({
  ca: pemFile.optional().describe("PEM file of the CAs that sign the backends' certificates; replaces the system roots. Default: the system roots."),
  servername: z.string().regex(/^[A-Za-z0-9.-]+$/, 'not a host name').optional().describe("Name sent as SNI and checked in the backend's certificate. Default: the backend URL's hostname; for an IP address no SNI is sent and the certificate must name the IP."),
  cert: pemFile.optional().describe('PEM client certificate file for mutual TLS (with `key`). Default: none.'),
  key: pemFile.optional().describe('PEM private key file of `cert`.'),
  insecureSkipVerify: z.boolean().default(false).describe("Accept any certificate from the backends, unverified. For testing only: anyone on the path can then impersonate the backend."),
}).superRefine((settings, ctx) => {
  try {
    loadBackendTls(settings);
  } catch (err) {
    if (!(err instanceof BackendTlsError)) throw err;
    ctx.addIssue({ code: 'custom', path: [err.field], message: err.detail });
  }
});

const upstreamSchema = strict({
  backends: z.array(backendSchema).min(1).optional().describe('Backends: URL strings or `{ url, weight }` objects. Required unless `discover` is given.'),
  discover: discoverySchema.optional().describe('Find the backends with a discovery source instead of listing them (see docs/discovery.md): `{ dns }`, `{ kubernetes }` or `{ consul }`.'),
  balancer: z.enum(balancerNames).default('round-robin').describe('Balancing algorithm: ' + balancerNames.join(', ') + '.'),
  protocol: protocolSchema,
  hashKey: z
    .union([
      z.string().transform((text, ctx) => parsed(parseHashKey, text, ctx)),
      // The parsed form, so a loaded config can be given back (library use, reload).
      strict({
        source: z.enum(['client-ip', 'header', 'cookie', 'path']).describe('Object form of hashKey: where the key comes from.'),
        name: z.string().optional().describe('Object form of hashKey: the header or cookie name.'),
      })
        .refine((spec) => (spec.source !== 'header' && spec.source !== 'cookie') || spec.name !== undefined, 'a header or cookie key needs a name')
        .transform((spec, ctx) => parsed(() => checkHashKey(spec.name === undefined ? { source: spec.source } : { source: spec.source, name: spec.name }), '', ctx)),
    ], { error: 'a hash key is client-ip, header:NAME, cookie:NAME or path' })
    .prefault('client-ip')
    .describe('Where `ring-hash` and `maglev` take their key: `client-ip`, `header:NAME`, `cookie:NAME` or `path`.'),
  sticky: z.union([z.boolean(), stickySchema], { error: 'sticky is true, false or { cookie, secret, ttl }' }).default(false).describe('Cookie-based session affinity on top of the balancer: `false`, `true`, or `{ cookie, secret, ttl }`.'),
  slowStart: duration(true).default(0).describe('A backend that comes up ramps from 10% to full weight over this long; 0 is off.'),
  maxInFlight: z.number().int().min(1).optional().describe('Attempts one backend may have in flight; at the limit it is skipped. Default: no limit.'),
  queue: queueSchema
    .prefault({})
    .describe('When every backend that is up is at `maxInFlight`, requests wait here in order for a slot instead of getting 503 at once (like HAProxy\'s `maxqueue` and `timeout queue`).'),
  outlierDetection: z
    .union([z.literal(false), outlierSchema], { error: 'outlierDetection is false or { consecutiveFailures, ... }' })
    .prefault({})
    .describe('Passive outlier detection: a backend whose attempts keep failing is ejected for a while (see docs/health-checks.md), or `false` for none.'),
  panicThreshold: z.number().min(0).max(100).default(0).describe('When fewer than this percentage of the backends (draining and disabled ones aside) are healthy, requests go to all of them, health and ejection ignored; 0 is off, so all backends down means 503.'),
  ewmaDecay: duration().default(10_000).describe('`ewma`: time for an old latency sample\'s weight to fall to 1/e.'),
  maxResponseHeaderSize: size()
    .default(16 * 1024)
    .refine((bytes) => bytes >= 1024, 'must be at least 1KiB')
    .describe("A backend response whose status line and header fields are larger than this is a protocol error: 502, not retried, counted by outlier detection."),
  preserveHost: z.boolean().default(true).describe("Forward the client's Host header, or (false) send the backend's host:port. Either way, TLS to an https backend uses the backend's name (see `tls.servername`)."),
  rewriteLocation: z
    .boolean()
    .default(true)
    .describe("Rewrite `Location` and `Content-Location` response fields that name a backend's own address (its origin and base path, e.g. `http://10.0.0.5:8080/base/x`) to the address the client used (`http://CLIENT-HOST/x`), as nginx's `proxy_redirect default` does. Relative URLs and other hosts are left alone."),
  closeTunnelsOnDown: z.boolean().default(false).describe("Close a backend's open WebSocket tunnels when it is marked down (health check, failed attempts, outlier ejection), as HAProxy's `on-marked-down shutdown-sessions`. Default: they run on."),
  tls: backendTlsSchema.optional().describe('TLS towards `https://` backends, for requests and health checks alike. Certificates are verified by default (system roots, name from the backend URL). Relative paths are from the working directory; files are read again on every reload.'),
  healthCheck: healthCheckSchema,
  retry: strict({
    retriesPerBackend: z.number().int().min(0).max(100).default(3).describe('Retries on the same backend after a failed attempt.'),
    retryDelay: duration(true).default(10).describe('Pause before such a retry.'),
    maxRetryDelay: duration(true).default(0).describe('When above retryDelay: the pause doubles with each retry up to this cap, and is picked at random below that (full jitter). 0: every pause is retryDelay.'),
    maxBackends: z.number().int().min(1).max(1000).default(3).describe('Backends one request may try.'),
    replayBuffer: size().default(64 * 1024).describe('Request bodies up to this size are kept so idempotent requests can be replayed.'),
    retryOn: z
      .array(z.enum(['connect', 'reset', 'timeout']))
      .default(['connect', 'reset'])
      .describe('Failures that are retried: `connect` (never reached the backend), `reset` (connection lost before a response), `timeout` (no response headers in time). `reset` and `timeout` only for idempotent methods or requests with an Idempotency-Key. Default `[connect, reset]`.'),
    retryStatuses: z
      .array(z.number().int().min(400).max(599))
      .default([])
      .describe('Backend statuses (e.g. 502, 503, 504) retried like `reset` when a retry is possible; otherwise the response is relayed as it is. Default none.'),
    perTryTimeout: duration(true).default(0).describe('Time one attempt may wait for response headers before it counts as a `timeout`; 0 uses `timeouts.upstream`.'),
    tryDuration: duration(true).default(0).describe('No new attempt starts this long after the request arrived; the request then fails with the last error. 0 is no limit.'),
    budget: strict({
      minRetries: z.number().int().min(0).default(3).describe('Retries in flight the budget always allows.'),
      percent: z.number().min(0).max(100).default(20).describe('Retries in flight allowed as a percentage of the requests in flight, when that is more than minRetries.'),
    })
      .prefault({})
      .describe('Retry budget: retries in flight for this upstream never exceed max(minRetries, percent% of its requests in flight); past it a failed attempt is not retried. Connect failures are exempt: they did no work at a backend.'),
  })
    .prefault({})
    .describe('Retry policy: only retries that are safe (see docs/retries.md).'),
  timeouts: strict({
    connect: duration().default(5000).describe('Time to connect to a backend.'),
    upstream: duration().default(60_000).describe('Time a backend may take to send response headers, and the longest pause inside a body (each overridable below).'),
    responseHeaders: duration().optional().describe('Time a backend may take to send response headers. Default: `upstream`.'),
    bodyIdle: duration().optional().describe('Longest pause inside a response body; a gRPC call with a longer deadline (`grpc-timeout`) waits until it. Default: `upstream`.'),
    upstreamKeepAlive: duration().default(4000).describe("Idle pooled backend connections close after this long (or the backend's shorter Keep-Alive hint)."),
    tunnelIdle: duration().default(3_600_000).describe('A WebSocket tunnel with no bytes either way for this long is closed on both sides (HAProxy\'s `timeout tunnel`).'),
  })
    .prefault({})
    .describe('Timeouts towards the backends.'),
}).superRefine(protocolIssues);

export const configSchema = strict({
  listeners: z.array(listenerSchema).min(1).default([{ port: 3030, clientKeepAlive: 60_000, clientHeadersTimeout: 30_000, acceptBatch: 128, trustedProxies: [], maxHeaderSize: 16 * 1024, requestTimeout: 0, maxConnections: 10_000, maxBodySize: 0, ambiguousPaths: 'reject', redirectHttps: false, http2: true, h2c: false, maxConcurrentStreams: 100 }]).describe('Where Switchyard listens. Default: one listener on port 3030, every interface.'),
  routes: z.array(routeSchema).default([]).describe('Host and path-prefix rules that send requests to upstreams. Default: everything to the only upstream.'),
  upstreams: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'upstream names use letters, digits, "_", "." and "-"'), upstreamSchema).describe('Named sets of backends, each with its balancer, health check, retry policy and timeouts. Required.'),
  log: strict({
    level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info').describe('Lowest level written.'),
    format: z.enum(['json', 'pretty']).optional().describe('`json` or `pretty`. Default: pretty on a terminal, json otherwise.'),
    access: z.boolean().default(false).describe('One info line per request (client, method, path, status, upstream, backend, attempts, duration, bytes).'),
  })
    .prefault({})
    .describe('Logging.'),
  admin: z.union([z.literal(false), adminSchema], { error: 'admin is false or { host, port, token }' }).default({ host: '127.0.0.1', port: 9901 }).describe('Admin API, metrics and dashboard listener, or `false` for none.'),
  watch: z.boolean().default(true).describe('Reload when this file changes (debounced). SIGHUP and `POST /api/reload` reload in any case.'),
  gracePeriod: duration().default(10_000).describe('On SIGTERM/SIGINT, time in-flight requests get to finish.'),
  workers: workersSchema,
}).superRefine((config, ctx) => {
  const names = Object.keys(config.upstreams);
  if (names.length === 0) ctx.addIssue({ code: 'custom', path: ['upstreams'], message: 'at least one upstream is required' });
  config.routes.forEach((route, i) => {
    if (config.upstreams[route.upstream] === undefined) {
      ctx.addIssue({ code: 'custom', path: ['routes', i, 'upstream'], message: `no upstream named "${route.upstream}" (known: ${names.join(', ')})` });
    }
  });
  if (config.routes.length === 0 && names.length > 1) {
    ctx.addIssue({ code: 'custom', path: ['routes'], message: 'with more than one upstream, routes must say which requests go where' });
  }
  config.listeners.forEach((listener, i) => {
    if (listener.redirectHttps && listener.tls !== undefined) ctx.addIssue({ code: 'custom', path: ['listeners', i, 'redirectHttps'], message: 'an HTTPS listener cannot redirect to HTTPS: use redirectHttps on a cleartext listener' });
    if (listener.h2c && listener.tls !== undefined) ctx.addIssue({ code: 'custom', path: ['listeners', i, 'h2c'], message: 'h2c is HTTP/2 without TLS: an HTTPS listener offers HTTP/2 by ALPN (http2)' });
  });
  crossFieldChecks(config, (path, message) => ctx.addIssue({ code: 'custom', path: [...path], message }));
});

/** The file as written (durations as text or numbers). */
export type ConfigInput = z.input<typeof configSchema>;
/** A validated, fully defaulted config: durations in milliseconds, sizes in bytes. */
export type Config = z.output<typeof configSchema>;
