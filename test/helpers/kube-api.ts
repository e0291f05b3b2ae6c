import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A stand-in for the Kubernetes API server's EndpointSlice endpoints (issue 13), faithful to
 * the wire: list (`EndpointSliceList`), watch (chunked newline-delimited JSON events ADDED,
 * MODIFIED, DELETED, BOOKMARK, ERROR), one resourceVersion counter like etcd's revision,
 * `allowWatchBookmarks`, `timeoutSeconds`, `410 Gone` for versions older than the last
 * compaction, bearer-token auth and `Status` objects for errors.
 */

export interface EndpointSpec {
  readonly addresses: readonly string[];
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
}

export interface PortSpec {
  readonly name?: string;
  readonly port: number;
  readonly protocol?: 'TCP' | 'UDP' | 'SCTP';
  readonly appProtocol?: string;
}

export interface SliceSpec {
  readonly name: string;
  /** The Service the slice belongs to: label `kubernetes.io/service-name`. */
  readonly service: string;
  /** Default `default`. */
  readonly namespace?: string;
  readonly addressType?: 'IPv4' | 'IPv6' | 'FQDN';
  readonly endpoints: readonly EndpointSpec[];
  readonly ports: readonly PortSpec[] | null;
}

export interface KubeApiOptions {
  /** Token that requests must carry as `Authorization: Bearer`; undefined: no auth. */
  readonly token?: string;
  /** Serve HTTPS with this certificate. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Interval of BOOKMARK events on watches that allow them. Default 60 s, as the real server (roughly). */
  readonly bookmarkIntervalMs?: number;
  /** How a watch from a compacted version is refused: an ERROR event in a 200 (the watch cache's way) or a 410 status. */
  readonly expiredWatchAs?: 'event' | 'status';
}

/** A request the stand-in saw. */
export interface SeenRequest {
  readonly path: string;
  readonly authorization: string | undefined;
  readonly watch: boolean;
  readonly status: number;
}

type Obj = Record<string, unknown> & { metadata: Record<string, unknown> };
interface HistoryEntry {
  readonly version: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly namespace: string;
  readonly object: Obj;
  /** The object before a MODIFIED, to tell a watch with a selector that it now matches or no longer does. */
  readonly previous?: Obj;
}
interface Watcher {
  readonly namespace: string | undefined;
  readonly selector: Selector;
  readonly res: http.ServerResponse;
  readonly bookmarks: boolean;
  stalled: boolean;
  readonly timers: NodeJS.Timeout[];
  end(): void;
}
type Selector = (labels: Record<string, string>) => boolean;

const group = '/apis/discovery.k8s.io/v1';

function status(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

/** `a=b,c==d,e!=f`, the equality-based label selectors; undefined when it cannot be parsed. */
function parseSelector(text: string | null): Selector | undefined {
  if (text === null || text === '') return () => true;
  const terms: ((l: Record<string, string>) => boolean)[] = [];
  for (const term of text.split(',')) {
    const m = /^\s*([A-Za-z0-9./_-]+)\s*(!=|==|=)\s*([A-Za-z0-9._-]*)\s*$/.exec(term);
    if (m === null) return undefined;
    const [, key = '', op, value] = m;
    terms.push(op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value);
  }
  return (labels) => terms.every((t) => t(labels));
}

export class KubeApi {
  readonly requests: SeenRequest[] = [];
  /** Emits `request` (a SeenRequest) for every answered request, watches included, and `watchEnd` when a watch closes. */
  readonly events = new EventEmitter();
  private readonly server: http.Server;
  private readonly options: KubeApiOptions;
  private token: string | undefined;
  private forbidden = false;
  private version = 1;
  private compactedAt = 0;
  private readonly objects = new Map<string, Obj>();
  private readonly history: HistoryEntry[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly sockets = new Set<Socket>();
  private listening = false;
  private portNumber = 0;

  constructor(options: KubeApiOptions = {}) {
    this.options = options;
    this.token = options.token;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => this.handle(req, res);
    this.server = options.tls === undefined ? http.createServer(handler) : https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler);
    this.server.on(options.tls === undefined ? 'connection' : 'secureConnection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.server.on('tlsClientError', () => {});
  }

  get port(): number {
    return this.portNumber;
  }

  get url(): string {
    return `${this.options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${this.portNumber}`;
  }

  /** Open watches (stalled ones included). */
  get watchCount(): number {
    return this.watchers.size;
  }

  /** The current resourceVersion (etcd revision). */
  get resourceVersion(): number {
    return this.version;
  }

  /** Listens on 127.0.0.1 (the same port as before after `down()`). */
  async up(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.portNumber, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.portNumber = (this.server.address() as AddressInfo).port;
    this.listening = true;
  }

  /** Stops listening and cuts every connection (watches end without a last chunk). State is kept. */
  async down(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    for (const w of this.watchers) w.end();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  close(): Promise<void> {
    return this.down();
  }

  setToken(token: string | undefined): void {
    this.token = token;
  }

  /** Refuses every request with 403, as RBAC does for an account without list and watch. */
  setForbidden(forbidden: boolean): void {
    this.forbidden = forbidden;
  }

  /** Creates or replaces a slice: an ADDED or MODIFIED event. */
  applySlice(spec: SliceSpec): void {
    const namespace = spec.namespace ?? 'default';
    const key = `${namespace}/${spec.name}`;
    const old = this.objects.get(key);
    const version = ++this.version;
    const object: Obj = {
      kind: 'EndpointSlice',
      apiVersion: 'discovery.k8s.io/v1',
      metadata: {
        name: spec.name,
        namespace,
        uid: (old?.metadata['uid'] as string | undefined) ?? randomUUID(),
        resourceVersion: String(version),
        generation: ((old?.metadata['generation'] as number | undefined) ?? 0) + 1,
        creationTimestamp: (old?.metadata['creationTimestamp'] as string | undefined) ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        labels: { 'kubernetes.io/service-name': spec.service, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
      },
      addressType: spec.addressType ?? 'IPv4',
      endpoints: spec.endpoints.map((e) => ({
        addresses: [...e.addresses],
        conditions: { ready: e.ready ?? true, serving: e.serving ?? e.ready ?? true, terminating: e.terminating ?? false },
      })),
      ports: spec.ports === null ? null : spec.ports.map((p) => ({ ...(p.name === undefined ? {} : { name: p.name }), protocol: p.protocol ?? 'TCP', port: p.port, ...(p.appProtocol === undefined ? {} : { appProtocol: p.appProtocol }) })),
    };
    this.objects.set(key, object);
    this.record(old === undefined ? { version, type: 'ADDED', namespace, object } : { version, type: 'MODIFIED', namespace, object, previous: old });
  }

  /** Sets the conditions of the endpoint with `address` in slice `name` (unset ones keep their value): a MODIFIED event. */
  setConditions(name: string, address: string, conditions: { ready?: boolean; serving?: boolean; terminating?: boolean }, namespace = 'default'): void {
    const old = this.objects.get(`${namespace}/${name}`);
    if (old === undefined) throw new Error(`no slice ${namespace}/${name}`);
    const labels = old.metadata['labels'] as Record<string, string>;
    const endpoints = (old['endpoints'] as { addresses: string[]; conditions: Required<EndpointSpec> }[]).map((e) => {
      const c = e.addresses.includes(address) ? { ...e.conditions, ...conditions } : e.conditions;
      return { addresses: e.addresses, ready: c.ready, serving: c.serving, terminating: c.terminating };
    });
    if (!endpoints.some((e) => e.addresses.includes(address))) throw new Error(`no endpoint ${address} in slice ${namespace}/${name}`);
    this.applySlice({
      name,
      namespace,
      service: labels['kubernetes.io/service-name'] ?? '',
      addressType: old['addressType'] as SliceSpec['addressType'] & string,
      endpoints,
      ports: old['ports'] as PortSpec[] | null,
    });
  }

  /** Deletes a slice: a DELETED event carrying its last state at a new resourceVersion. */
  deleteSlice(name: string, namespace = 'default'): void {
    const key = `${namespace}/${name}`;
    const old = this.objects.get(key);
    if (old === undefined) throw new Error(`no slice ${key}`);
    this.objects.delete(key);
    const version = ++this.version;
    const object: Obj = { ...old, metadata: { ...old.metadata, resourceVersion: String(version) } };
    this.record({ version, type: 'DELETED', namespace, object });
  }

  /** Forgets history up to now: watches from older versions get 410; `expireWatches` also ends open ones with an ERROR 410 event. */
  compact(options: { expireWatches?: boolean } = {}): void {
    this.compactedAt = this.version;
    this.history.length = 0;
    if (options.expireWatches !== true) return;
    for (const w of this.watchers) {
      if (w.stalled) continue;
      this.send(w, { type: 'ERROR', object: this.expiredStatus(this.version - 1) });
      w.end();
    }
  }

  /** Open watches go silent: no events, no bookmarks, no end at their timeout (a half-dead connection). */
  stallWatches(): void {
    for (const w of this.watchers) {
      w.stalled = true;
      for (const t of w.timers) clearTimeout(t);
    }
  }

  /** Ends every open watch normally, as its timeoutSeconds would. */
  endWatches(): void {
    for (const w of this.watchers) w.end();
  }

  /** Writes `text` as is into every open watch (a broken server or proxy). */
  injectRaw(text: string): void {
    for (const w of this.watchers) w.res.write(text);
  }

  private expiredStatus(from: number): Record<string, unknown> {
    return status(410, 'Expired', `too old resource version: ${from} (${this.compactedAt + 1})`);
  }

  private record(entry: HistoryEntry): void {
    this.history.push(entry);
    for (const w of this.watchers) {
      if (!w.stalled) this.deliver(w, entry);
    }
  }

  /**
   * Sends `entry` to `w` as the API server's filtered watch does: a MODIFIED object that starts to
   * match the selector arrives as ADDED, one that stops matching as DELETED.
   */
  private deliver(w: Watcher, entry: HistoryEntry): void {
    if (w.namespace !== undefined && w.namespace !== entry.namespace) return;
    const now = w.selector(entry.object.metadata['labels'] as Record<string, string>);
    const before = entry.previous === undefined ? now : w.selector(entry.previous.metadata['labels'] as Record<string, string>);
    if (now && before) this.send(w, { type: entry.type, object: entry.object });
    else if (now) this.send(w, { type: 'ADDED', object: entry.object });
    else if (before) this.send(w, { type: 'DELETED', object: entry.object });
  }

  private send(w: Watcher, event: Record<string, unknown>): void {
    w.res.write(`${JSON.stringify(event)}\n`);
  }

  private seen(req: http.IncomingMessage, watch: boolean, code: number): void {
    const entry: SeenRequest = { path: req.url ?? '', authorization: req.headers.authorization, watch, status: code };
    this.requests.push(entry);
    this.events.emit('request', entry);
  }

  private reply(req: http.IncomingMessage, res: http.ServerResponse, code: number, body: Record<string, unknown>, watch = false): void {
    this.seen(req, watch, code);
    res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-cache, private' });
    res.end(JSON.stringify(body));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const watch = url.searchParams.get('watch') === '1' || url.searchParams.get('watch') === 'true';
    if (this.token !== undefined && req.headers.authorization !== `Bearer ${this.token}`) {
      return this.reply(req, res, 401, status(401, 'Unauthorized', 'Unauthorized'), watch);
    }
    if (this.forbidden) {
      const verb = watch ? 'watch' : 'list';
      const message = `endpointslices.discovery.k8s.io is forbidden: User "system:serviceaccount:default:switchyard" cannot ${verb} resource "endpointslices" in API group "discovery.k8s.io" in the namespace "default"`;
      return this.reply(req, res, 403, status(403, 'Forbidden', message), watch);
    }
    const m = /^\/apis\/discovery\.k8s\.io\/v1\/(?:namespaces\/([^/]+)\/)?endpointslices$/.exec(url.pathname);
    if (m === null || req.method !== 'GET') {
      return this.reply(req, res, 404, status(404, 'NotFound', 'the server could not find the requested resource'), watch);
    }
    const namespace = m[1] === undefined ? undefined : decodeURIComponent(m[1]);
    const selector = parseSelector(url.searchParams.get('labelSelector'));
    if (selector === undefined) {
      return this.reply(req, res, 400, status(400, 'BadRequest', `unable to parse requirement: ${url.searchParams.get('labelSelector')}`), watch);
    }
    const matches = (o: Obj, ns: string): boolean => (namespace === undefined || namespace === ns) && selector(o.metadata['labels'] as Record<string, string>);
    if (!watch) {
      const items = [...this.objects].filter(([key, o]) => matches(o, key.split('/')[0] ?? '')).map(([, o]) => {
        const { kind: _k, apiVersion: _a, ...item } = o;
        return item;
      });
      return this.reply(req, res, 200, { kind: 'EndpointSliceList', apiVersion: 'discovery.k8s.io/v1', metadata: { resourceVersion: String(this.version) }, items });
    }
    this.startWatch(req, res, url, namespace, selector, matches);
  }

  private startWatch(req: http.IncomingMessage, res: http.ServerResponse, url: URL, namespace: string | undefined, selector: Selector, matches: (o: Obj, ns: string) => boolean): void {
    const fromText = url.searchParams.get('resourceVersion') ?? '';
    const from = fromText === '' || fromText === '0' ? undefined : Number(fromText);
    if (from !== undefined && (!Number.isInteger(from) || from < 0)) {
      return this.reply(req, res, 400, status(400, 'BadRequest', `invalid resource version: ${fromText}`), true);
    }
    const expired = from !== undefined && from < this.compactedAt;
    if (expired && this.options.expiredWatchAs === 'status') return this.reply(req, res, 410, this.expiredStatus(from), true);
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const timers: NodeJS.Timeout[] = [];
    const watcher: Watcher = {
      namespace,
      selector,
      res,
      bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true',
      stalled: false,
      timers,
      end: () => {
        for (const t of timers) clearTimeout(t);
        res.end();
        if (this.watchers.delete(watcher)) this.events.emit('watchEnd');
      },
    };
    if (expired) {
      this.seen(req, true, 200);
      this.send(watcher, { type: 'ERROR', object: this.expiredStatus(from) });
      return watcher.end();
    }
    this.watchers.add(watcher);
    res.on('close', () => watcher.end());
    this.seen(req, true, 200);
    if (from === undefined) {
      // No version: every existing object as ADDED, then changes (the API's "start at most recent").
      for (const [key, o] of this.objects) if (matches(o, key.split('/')[0] ?? '')) this.send(watcher, { type: 'ADDED', object: o });
    } else {
      for (const e of this.history) if (e.version > from) this.deliver(watcher, e);
    }
    const timeoutSeconds = Number(url.searchParams.get('timeoutSeconds') ?? '1800');
    timers.push(setTimeout(() => watcher.end(), timeoutSeconds * 1000));
    if (watcher.bookmarks) {
      const bookmark = (): void => {
        if (!watcher.stalled) this.send(watcher, { type: 'BOOKMARK', object: { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', metadata: { resourceVersion: String(this.version), creationTimestamp: null }, addressType: '', endpoints: null } });
      };
      const interval = setInterval(bookmark, this.options.bookmarkIntervalMs ?? 60_000);
      timers.push(interval);
    }
  }
}

/** A stand-in listening on 127.0.0.1 port 0. */
export async function startKubeApi(options: KubeApiOptions = {}): Promise<KubeApi> {
  const api = new KubeApi(options);
  await api.up();
  return api;
}
