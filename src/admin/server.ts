import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import { urlOf, type ReloadResult, type Runtime } from '../runtime.js';
import { applyAction, backendActions, backendView, upstreamView, upstreamsView, type BackendAction } from './api.js';
import { dashboardHtml } from './dashboard-page.js';
import { listenerLabel, withFigures, type BackendFigures, type ListenerTunnelFigures } from './worker-figures.js';

/** What /metrics serves; see metrics.ts. */
export interface MetricsExporter {
  readonly contentType: string;
  text(): Promise<string>;
  close(): void;
}

export interface AdminServerOptions {
  readonly runtime: Runtime;
  readonly logger: Logger;
  readonly version: string;
  readonly host: string;
  readonly port: number;
  /** Bearer token every API call must carry; undefined: none (loopback only). */
  readonly token: string | undefined;
  /** The config file, or `flags`. */
  readonly configSource: string;
  readonly reload: () => Promise<ReloadResult>;
  readonly metrics?: MetricsExporter;
  /** What GET /ready answers: 200 when ok, else 503 with the reason (see docs/observability.md). */
  readonly ready: () => Readiness;
  /** Worker processes, when several serve: their listeners, summed figures and a sync after actions. */
  readonly workers?: WorkersView;
}

/** Whether this process should get traffic now, and why not. */
export interface Readiness {
  readonly ok: boolean;
  readonly reason: string;
}

/** What the admin API reads from the worker processes of a primary (src/cluster/primary.ts). */
export interface WorkersView {
  /** The listeners the workers share. */
  listeners(): readonly { readonly address: string; readonly port: number; readonly url: string }[];
  list(): readonly { readonly id: number; readonly pid: number | null; readonly serving: boolean; readonly startedAt: string }[];
  /** Every worker's live backend figures, summed (a worker that does not answer in time is left out). */
  figures(): Promise<ReadonlyMap<string, BackendFigures>>;
  /** Every worker's listener tunnel figures, summed by listener (`host:port`). */
  listenerTunnels(): Promise<ReadonlyMap<string, ListenerTunnelFigures['tunnels']>>;
  /** Resolves once every worker has applied the backend states sent so far. */
  sync(): Promise<void>;
}

// The admin-token rule lives with the config checks so `validate` applies it too.
export { adminToken, isLoopback } from '../config/checks.js';

const bearerCredentials = /^bearer +(.+)$/is;

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

interface Reply {
  readonly status: number;
  readonly body: unknown;
  readonly allow?: string;
}

const notFound = (what: string): Reply => ({ status: 404, body: { error: what } });
const methodNotAllowed = (allow: string): Reply => ({ status: 405, body: { error: `method not allowed; use ${allow}` }, allow });

/**
 * The admin listener: JSON API, Prometheus metrics and the dashboard page. Separate from the
 * proxy listeners, loopback by default, bearer-token protected when a token is set.
 */
export class AdminServer {
  private readonly server: http.Server;
  private readonly options: AdminServerOptions;
  private readonly tokenDigest: Buffer | null;
  private readonly startedAt = new Date();
  url = '';

  constructor(options: AdminServerOptions) {
    this.options = options;
    this.tokenDigest = options.token === undefined ? null : digest(options.token);
    this.server = http.createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        options.logger.error({ error: (err as Error).message }, `admin request failed: ${(err as Error).message}`);
        if (!res.headersSent) this.send(res, { status: 500, body: { error: 'internal error' } });
        else res.destroy();
      });
    });
  }

  async listen(): Promise<void> {
    const { host, port } = this.options;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) => {
        reject(err.code === 'EADDRINUSE' ? new ConfigError(`admin port ${port} is already in use (pick another with admin.port or --admin, or turn it off with admin: false or --no-admin)`, { cause: err }) : err);
      });
      this.server.listen({ host, port }, resolve);
    });
    const address = this.server.address() as AddressInfo;
    this.url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
    this.options.logger.info({ admin: this.url }, `Admin API and dashboard at ${this.url}/`);
  }

  private authorized(req: http.IncomingMessage): boolean {
    if (this.tokenDigest === null) return true;
    // The auth scheme is case-insensitive and followed by one or more spaces (RFC 9110 section 11.1).
    const match = bearerCredentials.exec(req.headers.authorization ?? '');
    if (match === null) return false;
    return timingSafeEqual(digest(match[1] as string), this.tokenDigest);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    req.resume();
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const method = req.method ?? 'GET';
    if (path === '/' || path === '/index.html') {
      if (method !== 'GET' && method !== 'HEAD') return this.send(res, methodNotAllowed('GET'));
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'content-security-policy': "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self' data:" });
      res.end(method === 'HEAD' ? undefined : dashboardHtml);
      return;
    }
    // Orchestrator probes carry no credentials, so these two answer without the token; they
    // reveal only whether the process is up and ready, nothing about backends.
    if (path === '/live' || path === '/ready') {
      if (method !== 'GET' && method !== 'HEAD') return this.send(res, methodNotAllowed('GET'));
      if (path === '/live') return this.send(res, { status: 200, body: { live: true } });
      const { ok, reason } = this.options.ready();
      return this.send(res, { status: ok ? 200 : 503, body: { ready: ok, reason } });
    }
    if (!this.authorized(req)) {
      res.setHeader('www-authenticate', 'Bearer realm="switchyard"');
      return this.send(res, { status: 401, body: { error: 'missing or wrong bearer token' } });
    }
    if (path === '/metrics') {
      if (method !== 'GET') return this.send(res, methodNotAllowed('GET'));
      const metrics = this.options.metrics;
      if (metrics === undefined) return this.send(res, notFound('metrics are off'));
      const text = await metrics.text();
      res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
      res.end(text);
      return;
    }
    return this.send(res, await this.route(method, path));
  }

  private async route(method: string, path: string): Promise<Reply> {
    const runtime = this.options.runtime;
    const parts = path.split('/').slice(1);
    if (parts[0] !== 'api') return notFound(`no such endpoint: ${path}`);
    const [, resource, name, sub, id, action, ...rest] = parts;
    if (resource === 'status' && parts.length === 2) return method === 'GET' ? { status: 200, body: this.status(await this.options.workers?.listenerTunnels()) } : methodNotAllowed('GET');
    if (resource === 'reload' && parts.length === 2) {
      if (method !== 'POST') return methodNotAllowed('POST');
      const result = await this.options.reload();
      if (!result.ok) return { status: 422, body: { ok: false, error: result.error } };
      const body = { ok: true, digest: result.digest, added: result.added, removed: result.removed, ignored: result.ignored };
      return { status: 200, body: result.ignored.length === 0 ? body : { ...body, warning: `not applied until a restart: ${result.ignored.join(', ')}` } };
    }
    if (resource !== 'upstreams' || rest.length > 0) return notFound(`no such endpoint: ${path}`);
    const sums = method === 'GET' && action === undefined ? await this.options.workers?.figures() : undefined;
    if (name === undefined || name === '') return method === 'GET' ? { status: 200, body: summed(upstreamsView(runtime), sums) } : methodNotAllowed('GET');
    const upstream = runtime.snapshot.upstreams.get(decodeURIComponent(name));
    if (upstream === undefined) return notFound(`no upstream named "${decodeURIComponent(name)}"`);
    if (sub === undefined) return method === 'GET' ? { status: 200, body: summed({ upstreams: [upstreamView(upstream, runtime)] }, sums).upstreams[0] } : methodNotAllowed('GET');
    if (sub !== 'backends' || id === undefined) return notFound(`no such endpoint: ${path}`);
    let url: string;
    try {
      url = decodeURIComponent(id);
    } catch {
      return notFound(`bad backend id "${id}"`);
    }
    const backend = upstream.backends.find((b) => b.url === url);
    if (backend === undefined) return notFound(`upstream "${upstream.name}" has no backend ${url}`);
    if (action === undefined) return method === 'GET' ? { status: 200, body: sums === undefined ? backendView(backend) : withFigures(backendView(backend), upstream.name, sums) } : methodNotAllowed('GET');
    if (!(backendActions as readonly string[]).includes(action)) return notFound(`unknown action "${action}" (known: ${backendActions.join(', ')})`);
    if (method !== 'POST') return methodNotAllowed('POST');
    applyAction(backend, action as BackendAction);
    // With workers, the reply waits until every one of them has the new state.
    await this.options.workers?.sync();
    this.options.logger.warn({ upstream: upstream.name, backend: backend.url, action }, `admin: ${action} ${backend.url}`);
    return { status: 200, body: { ok: true, backend: backendView(backend) } };
  }

  /** `workerTunnels`: with workers, their listeners' tunnel figures summed. */
  private status(workerTunnels?: ReadonlyMap<string, ListenerTunnelFigures['tunnels']>) {
    const runtime = this.options.runtime;
    const snapshot = runtime.snapshot;
    const tunnels = runtime.listenerTunnels();
    const workers = this.options.workers;
    return {
      version: this.options.version,
      uptimeSeconds: Math.round((Date.now() - this.startedAt.getTime()) / 100) / 10,
      startedAt: this.startedAt.toISOString(),
      // Each listener's WebSocket tunnels: open, total, bytes each way (in: client to backend), summed over the workers.
      listeners:
        workers === undefined
          ? runtime.addresses.map((a, i) => ({ address: a.address, port: a.port, url: runtime.urls[i] ?? urlOf(a), tunnels: tunnels[i]?.tunnels ?? null }))
          : workers.listeners().map((l) => ({ ...l, tunnels: workerTunnels?.get(listenerLabel(l)) ?? null })),
      ...(this.options.workers === undefined ? {} : { workers: this.options.workers.list() }),
      config: { digest: snapshot.digest, source: this.options.configSource, loadedAt: runtime.loadedAt.toISOString() },
      reloads: runtime.reloads,
      // HTTPS listeners' certificates (issue 11); the dashboard warns 14 days before expiry.
      certificates: runtime.certificates().map((c) => ({ port: c.port, cert: c.cert, names: c.names, expiresAt: new Date(c.expiresAtMs).toISOString() })),
      // Per upstream with a discovery source (issue 13): its source, state, generation, last update and error.
      discovery: Object.fromEntries([...runtime.discoveries.all()].map((d) => [d.upstream, d.view()])),
    };
  }

  private send(res: http.ServerResponse, reply: Reply): void {
    const text = `${JSON.stringify(reply.body)}\n`;
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) };
    if (reply.allow !== undefined) headers['allow'] = reply.allow;
    res.writeHead(reply.status, headers);
    res.end(text);
  }

  async close(): Promise<void> {
    this.options.metrics?.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/** Upstream views with the workers' summed figures, when there are workers. */
function summed(view: ReturnType<typeof upstreamsView>, sums: ReadonlyMap<string, BackendFigures> | undefined): ReturnType<typeof upstreamsView> {
  if (sums === undefined) return view;
  return { upstreams: view.upstreams.map((u) => ({ ...u, backends: u.backends.map((b) => withFigures(b, u.name, sums)) })) };
}
