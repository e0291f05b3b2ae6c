import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for Consul's HTTP API, enough of it for discovery tests: `GET /v1/health/service/NAME`
 * with blocking queries, the `passing` filter, `dc`, ACL tokens, and Consul's JSON shapes and
 * headers. Like Consul (before per-service indexes) it has one raft index for the health tables,
 * so any change, including to other services, wakes every blocked query and moves the index.
 */

export type CheckStatus = 'passing' | 'warning' | 'critical';

export interface ConsulInstance {
  /** Service ID, unique per service. */
  readonly id: string;
  /** Service.Address; '' means "use the node's address". */
  readonly address: string;
  readonly port: number;
  /** Node name and address; default node-ID / 127.0.0.1. */
  readonly node?: string;
  readonly nodeAddress?: string;
  readonly weights?: { readonly Passing: number; readonly Warning: number };
  readonly status?: CheckStatus;
  readonly tags?: readonly string[];
}

interface Stored extends ConsulInstance {
  status: CheckStatus;
  createIndex: number;
  modifyIndex: number;
}

export interface ConsulStandInOptions {
  /** When set, requests must carry this token (X-Consul-Token, ?token= or Authorization: Bearer). */
  readonly token?: string;
  /** Datacenters that exist; the first is the agent's own (default ['dc1']). */
  readonly datacenters?: readonly string[];
}

interface Waiter {
  readonly wake: () => void;
}

export class ConsulStandIn {
  readonly server: http.Server;
  url = '';
  /** Every health query received, in order, with its query string. */
  readonly queries: URLSearchParams[] = [];
  private port = 0;
  private index = 1;
  private readonly services = new Map<string, Map<string, Stored>>(); // key: `${dc}/${service}`
  private readonly waiters = new Set<Waiter>();
  private failure: { status: number; body: string } | null = null;
  private readonly options: ConsulStandInOptions;
  private readonly sockets = new Set<import('node:net').Socket>();

  constructor(options: ConsulStandInOptions = {}) {
    this.options = options;
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(options: ConsulStandInOptions = {}): Promise<ConsulStandIn> {
    const consul = new ConsulStandIn(options);
    await consul.up();
    return consul;
  }

  /** Client connections open now. */
  get connections(): number {
    return this.sockets.size;
  }

  get currentIndex(): number {
    return this.index;
  }

  register(service: string, instance: ConsulInstance, dc = this.datacenters[0] as string): void {
    const key = `${dc}/${service}`;
    const instances = this.services.get(key) ?? new Map<string, Stored>();
    this.services.set(key, instances);
    const index = this.bump();
    const old = instances.get(instance.id);
    instances.set(instance.id, { ...instance, status: instance.status ?? 'passing', createIndex: old?.createIndex ?? index, modifyIndex: index });
    this.wakeAll();
  }

  deregister(service: string, id: string, dc = this.datacenters[0] as string): void {
    this.services.get(`${dc}/${service}`)?.delete(id);
    this.bump();
    this.wakeAll();
  }

  setStatus(service: string, id: string, status: CheckStatus, dc = this.datacenters[0] as string): void {
    const stored = this.services.get(`${dc}/${service}`)?.get(id);
    if (stored === undefined) throw new Error(`no instance ${id} of ${service}`);
    stored.status = status;
    stored.modifyIndex = this.bump();
    this.wakeAll();
  }

  /** Something else changed in the cluster (another service, a node): the index moves, our data does not. */
  churn(): void {
    this.bump();
    this.wakeAll();
  }

  /** A Consul restart from an older snapshot: the index goes back to `index`. */
  resetIndex(index: number): void {
    this.index = index;
  }

  /** Answer every health query with this status and body (e.g. 500 "No cluster leader"); null: normal again. */
  failWith(failure: { status: number; body: string } | null): void {
    this.failure = failure;
  }

  /** Stops listening and drops every connection: clients get ECONNREFUSED until up(). */
  async down(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Listens again, on the same port as before (a new one the first time). */
  async up(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: '127.0.0.1', port: this.port }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
    this.url = `http://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    if (this.server.listening) await this.down();
  }

  private get datacenters(): readonly string[] {
    return this.options.datacenters ?? ['dc1'];
  }

  private bump(): number {
    this.index += 1;
    return this.index;
  }

  private wakeAll(): void {
    for (const waiter of [...this.waiters]) waiter.wake();
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.resume();
    const url = new URL(req.url ?? '/', 'http://consul');
    const match = /^\/v1\/health\/service\/([^/]+)$/.exec(url.pathname);
    if (match === null || req.method !== 'GET') return text(res, 404, '');
    this.queries.push(url.searchParams);
    const token = req.headers['x-consul-token'] ?? url.searchParams.get('token') ?? /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (this.options.token !== undefined && token !== undefined && token !== this.options.token) return text(res, 403, 'ACL not found');
    // No token: the anonymous token, which (default-deny) may read nothing; Consul filters the list.
    const filtered = this.options.token !== undefined && token === undefined;
    const dc = url.searchParams.get('dc') ?? (this.datacenters[0] as string);
    if (!this.datacenters.includes(dc)) return text(res, 500, 'No path to datacenter');
    if (this.failure !== null) return text(res, this.failure.status, this.failure.body);
    const service = decodeURIComponent(match[1] as string);
    const passing = url.searchParams.has('passing') && url.searchParams.get('passing') !== 'false';
    const minIndex = Number(url.searchParams.get('index') ?? '0');
    const waitMs = Math.min(parseDuration(url.searchParams.get('wait') ?? '5m'), 600_000);
    const answer = (): void => {
      const body = filtered ? [] : this.entries(dc, service, passing);
      const json = JSON.stringify(body);
      const headers: http.OutgoingHttpHeaders = {
        'content-type': 'application/json',
        'x-consul-index': String(Math.max(this.index, 1)),
        'x-consul-knownleader': 'true',
        'x-consul-lastcontact': '0',
        'content-length': Buffer.byteLength(json),
      };
      if (filtered) headers['x-consul-results-filtered-by-acls'] = 'true';
      res.writeHead(200, headers);
      res.end(json);
    };
    // Blocking query: hold while the index has not passed the client's, up to `wait`.
    if (minIndex <= 0 || this.index > minIndex) return answer();
    const waiter: Waiter = {
      wake: () => {
        if (this.index <= minIndex) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        if (!res.destroyed) answer();
      },
    };
    const timer = setTimeout(() => {
      this.waiters.delete(waiter);
      if (!res.destroyed) answer();
    }, waitMs);
    this.waiters.add(waiter);
    res.on('close', () => {
      clearTimeout(timer);
      this.waiters.delete(waiter);
    });
  }

  private entries(dc: string, service: string, passing: boolean): unknown[] {
    const instances = [...(this.services.get(`${dc}/${service}`)?.values() ?? [])];
    return instances
      .filter((i) => !passing || i.status === 'passing')
      .map((i) => {
        const node = i.node ?? `node-${i.id}`;
        return {
          Node: { ID: '', Node: node, Address: i.nodeAddress ?? '127.0.0.1', Datacenter: dc, TaggedAddresses: null, Meta: {}, CreateIndex: i.createIndex, ModifyIndex: i.createIndex },
          Service: {
            ID: i.id,
            Service: service,
            Tags: i.tags ?? [],
            Address: i.address,
            Meta: {},
            Port: i.port,
            Weights: i.weights ?? { Passing: 1, Warning: 1 },
            EnableTagOverride: false,
            CreateIndex: i.createIndex,
            ModifyIndex: i.modifyIndex,
          },
          Checks: [
            { Node: node, CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing', Output: 'Agent alive and reachable', ServiceID: '', ServiceName: '' },
            { Node: node, CheckID: `service:${i.id}`, Name: `Service '${service}' check`, Status: i.status, Output: '', ServiceID: i.id, ServiceName: service },
          ],
        };
      });
  }
}

function text(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Go durations as Consul takes them for `wait`: 10s, 5m, 250ms (a bare number is seconds). */
function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text);
  if (match === null) return 300_000;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  return Number(match[1]) * (units[match[2] ?? 's'] as number);
}
