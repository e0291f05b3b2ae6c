import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client, Dispatcher } from 'undici';
import { ConfigError } from '../errors.js';
import { readPemFile } from '../pem-file.js';
import { loadUndici } from '../undici-loader.js';

/** `discover.kubernetes` as the config schema gives it. */
export interface KubernetesOptions {
  /** The Service whose EndpointSlices are watched (label `kubernetes.io/service-name`). */
  readonly service: string;
  /** Default: the pod's namespace (service account), else `default`. */
  readonly namespace?: string | undefined;
  /** EndpointSlice port name or number; default the slice's only TCP port. */
  readonly port?: string | number | undefined;
  /** API server URL; default in a pod `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`. */
  readonly apiServer?: string | undefined;
  /** Bearer token file, re-read for every request (projected tokens rotate). */
  readonly tokenFile?: string | undefined;
  /** CA bundle (PEM) that signed the API server's certificate. */
  readonly caFile?: string | undefined;
}

/** Where a pod's service account is mounted. */
export const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface ConnectionSettings {
  /** Origin of the API server, e.g. `https://10.96.0.1:443`. */
  readonly origin: string;
  readonly namespace: string;
  readonly tokenFile: string | undefined;
  /** CA PEM text; undefined: Node's default trust store. */
  readonly ca: string | undefined;
}

/**
 * The API server, namespace, token and CA: the given fields first, then the pod's service account
 * and `KUBERNETES_SERVICE_HOST`/`_PORT`, as in-cluster clients do. Throws ConfigError (one line)
 * for what the user must fix.
 */
export function resolveSettings(options: KubernetesOptions, env: Readonly<Record<string, string | undefined>>, accountDir: string): ConnectionSettings {
  const field = (name: string): string => `discover.kubernetes.${name}`;
  const host = env['KUBERNETES_SERVICE_HOST'];
  const inPod = host !== undefined && host !== '';
  let server = options.apiServer;
  if (server === undefined) {
    if (!inPod) throw new ConfigError(`${field('apiServer')} is required outside a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set)`);
    const bracketed = host.includes(':') ? `[${host}]` : host;
    server = `https://${bracketed}:${env['KUBERNETES_SERVICE_PORT'] || '443'}`;
  }
  let origin: string;
  try {
    const url = new URL(server);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('not http(s)');
    origin = url.origin;
  } catch {
    throw new ConfigError(`${field('apiServer')}: "${server}" is not an http:// or https:// URL`);
  }
  const accountFile = (name: string): string | undefined => {
    const file = path.join(accountDir, name);
    return inPod && existsSync(file) ? file : undefined;
  };
  let namespace = options.namespace;
  if (namespace === undefined) {
    const file = accountFile('namespace');
    namespace = file === undefined ? 'default' : readFileSync(file, 'utf8').trim() || 'default';
  }
  const caFile = options.caFile ?? accountFile('ca.crt');
  let ca: string | undefined;
  if (caFile !== undefined) {
    try {
      ca = readPemFile(caFile);
    } catch (err) {
      throw new ConfigError(`${field('caFile')}: ${(err as Error).message}`, { cause: err });
    }
  }
  return { origin, namespace, tokenFile: options.tokenFile ?? accountFile('token'), ca };
}

/** A failed list or watch, its message saying what and why; `status` when the API server answered one. */
export class KubernetesError extends Error {
  readonly status: number | undefined;
  constructor(status: number | undefined, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KubernetesError';
    this.status = status;
  }
}

/** A `Status` object's `message` when `text` is one (the API server's error body), else the text cut short. */
export function statusMessage(text: string): string {
  try {
    const status = JSON.parse(text) as { kind?: unknown; message?: unknown };
    if (status.kind === 'Status' && typeof status.message === 'string') return status.message;
  } catch {
    // not JSON: fall through
  }
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** What a failed status means for the operator, in one line. */
export function explainStatus(status: number, what: string, message: string, settings: ConnectionSettings): string {
  const token = settings.tokenFile === undefined ? 'no tokenFile is set' : `token from ${settings.tokenFile}`;
  if (status === 401) return `${what}: 401 Unauthorized (${token}): ${message}`;
  if (status === 403) return `${what}: 403 Forbidden (the account needs list and watch on endpointslices.discovery.k8s.io in namespace ${settings.namespace}): ${message}`;
  return `${what}: HTTP ${status}: ${message}`;
}

/** One connection to the API server (TLS verified against the CA), sending the current token with every request. */
export class ApiConnection {
  readonly settings: ConnectionSettings;
  private readonly requestTimeoutMs: number;
  /** Made by the first request, with undici loaded then (see loadUndici). */
  private client: Promise<Client> | null = null;
  private closed = false;

  constructor(settings: ConnectionSettings, requestTimeoutMs: number) {
    this.settings = settings;
    this.requestTimeoutMs = requestTimeoutMs;
  }

  private async connect(): Promise<Client> {
    const { Client } = await loadUndici();
    return new Client(this.settings.origin, {
      // TCP keep-alive finds a peer that vanished without a FIN; the idle timer covers the rest.
      connect: { ...(this.settings.ca === undefined ? {} : { ca: this.settings.ca }), keepAlive: true, keepAliveInitialDelay: 30_000 },
      headersTimeout: this.requestTimeoutMs,
      // A watch is quiet for minutes: the source's idle timer bounds it, not undici's body timeout.
      bodyTimeout: 0,
    });
  }

  /** GETs `pathAndQuery` with the bearer token read from its file just now; `bodyTimeoutMs` 0: none. */
  async get(pathAndQuery: string, signal: AbortSignal, bodyTimeoutMs: number): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.settings.tokenFile !== undefined) {
      let token: string;
      try {
        token = (await readFile(this.settings.tokenFile, 'utf8')).trim();
      } catch (err) {
        throw new Error(`cannot read tokenFile ${this.settings.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
      }
      if (token !== '') headers['authorization'] = `Bearer ${token}`;
    }
    if (this.closed) throw new Error('connection closed');
    const client = await (this.client ??= this.connect());
    return client.request({ method: 'GET', path: pathAndQuery, headers, signal, bodyTimeout: bodyTimeoutMs });
  }

  /** Closes the connection, aborting what is in flight. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.client !== null) await (await this.client).destroy();
  }
}
