import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { Logger } from '../log.js';
import { certificateFor, loadCertificates, type ListenerTlsConfig, type LoadedCertificate } from './tls-certificates.js';

/**
 * TLS termination of one listener: the certificates chosen by SNI, swapped in place on reload
 * (the server and its connections stay), with session ticket keys kept for the listener's life.
 */

/** ALPN protocols offered, in order of preference: HTTP/1.1 only, or h2 first (RFC 9113 section 3.2). */
export const alpnProtocols: readonly string[] = ['http/1.1'];
export const alpnProtocolsWithH2: readonly string[] = ['h2', 'http/1.1'];

/** Time file changes settle before the certificates are read again (an editor or certbot writes in steps). */
const watchDebounceMs = 200;

export class TlsTermination {
  private config: ListenerTlsConfig;
  private certificates: LoadedCertificate[];
  private contexts: tls.SecureContext[];
  /** Made once: tickets issued before a reload still resume after it. */
  private readonly ticketKeys = randomBytes(48);
  private server: https.Server | null = null;
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly logger: Logger;
  /** What ALPN offers: alpnProtocols, or alpnProtocolsWithH2 when the listener speaks HTTP/2. */
  readonly alpn: readonly string[];

  /** Reads every certificate; throws a ListenerTlsError for a bad file. */
  constructor(config: ListenerTlsConfig, logger: Logger, alpn: readonly string[] = alpnProtocols) {
    this.config = config;
    this.logger = logger;
    this.alpn = alpn;
    this.certificates = loadCertificates(config);
    this.contexts = this.certificates.map((c) => this.contextOf(c));
    this.warnExpired();
  }

  /** Names and expiry of the certificates in use, in config order. */
  get loaded(): readonly LoadedCertificate[] {
    return this.certificates;
  }

  private contextOf(certificate: LoadedCertificate): tls.SecureContext {
    return tls.createSecureContext({ cert: certificate.cert, key: certificate.key, minVersion: this.config.minVersion, ticketKeys: this.ticketKeys } as tls.SecureContextOptions);
  }

  private warnExpired(): void {
    const now = Date.now();
    for (const c of this.certificates) {
      if (c.expiresAtMs <= now) this.logger.warn({ file: c.files.cert, expired: new Date(c.expiresAtMs).toISOString() }, `certificate "${c.files.cert}" expired on ${new Date(c.expiresAtMs).toISOString()}: clients will refuse it`);
    }
  }

  /** Options for https.createServer: the first certificate is the default (clients without SNI). */
  serverOptions(): https.ServerOptions {
    const first = this.certificates[0] as LoadedCertificate;
    return {
      cert: first.cert,
      key: first.key,
      minVersion: this.config.minVersion,
      ALPNProtocols: [...this.alpn],
      ticketKeys: this.ticketKeys,
      SNICallback: (servername, callback) => callback(null, this.contexts[certificateFor(this.certificates, servername)]),
    };
  }

  /** Remembers the server whose default context reloads replace, and watches the files. */
  attach(server: https.Server): void {
    this.server = server;
    this.watchFiles();
  }

  /**
   * Reads the certificates again (with `config` when the config was reloaded) and swaps them in;
   * open connections keep theirs. A broken file keeps the old certificates and logs the file and
   * the error. Returns whether the new ones are in use.
   */
  reload(config: ListenerTlsConfig = this.config): boolean {
    let certificates: LoadedCertificate[];
    const previous = this.config;
    this.config = config;
    try {
      certificates = loadCertificates(config);
    } catch (err) {
      this.config = previous;
      const index = (err as { index?: number }).index ?? 0;
      const field = (err as { field?: 'cert' | 'key' }).field ?? 'cert';
      const file = config.certificates[index]?.[field] ?? '';
      this.logger.error({ file, error: (err as Error).message }, `TLS certificate not reloaded, keeping the old one: ${(err as Error).message}`);
      return false;
    }
    this.certificates = certificates;
    this.contexts = certificates.map((c) => this.contextOf(c));
    const first = certificates[0] as LoadedCertificate;
    // The same ALPN list and ticket keys as at start: tickets issued before still resume.
    this.server?.setSecureContext({ cert: first.cert, key: first.key, minVersion: config.minVersion, ALPNProtocols: [...this.alpn], ticketKeys: this.ticketKeys } as tls.SecureContextOptions);
    this.warnExpired();
    this.logger.info({ files: config.certificates.map((c) => c.cert) }, `TLS certificates reloaded: ${config.certificates.map((c) => c.cert).join(', ')}`);
    if (previous !== config) this.watchFiles();
    return true;
  }

  private watchFiles(): void {
    this.unwatch();
    const files = new Set(this.config.certificates.flatMap((c) => [c.cert, c.key]));
    for (const file of files) {
      try {
        const watcher = watch(file, { persistent: false }, () => this.changed());
        watcher.on('error', () => {});
        this.watchers.push(watcher);
      } catch {
        // A file that vanished is reported by the reload its change triggers.
      }
    }
  }

  private changed(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.reload();
      // A rename-and-replace (certbot, kubernetes secrets) drops the inode watched: watch again.
      this.watchFiles();
    }, watchDebounceMs);
    this.timer.unref();
  }

  private unwatch(): void {
    for (const watcher of this.watchers) watcher.close();
    this.watchers = [];
  }

  /** Stops watching the files. */
  close(): void {
    this.unwatch();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** A node:http server, or a node:https one when the listener terminates TLS. */
export function createListenerServer(options: http.ServerOptions, handler: http.RequestListener, termination: TlsTermination | null): http.Server {
  if (termination === null) return http.createServer(options, handler);
  const server = https.createServer({ ...options, ...termination.serverOptions() }, handler);
  // A client that fails the handshake (an old TLS version, a wrong name) is its own business.
  server.on('tlsClientError', (_err, socket) => socket.destroy());
  termination.attach(server);
  return server as unknown as http.Server;
}
