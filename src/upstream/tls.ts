import net from 'node:net';
import tls from 'node:tls';
import { readPemFile } from '../pem-file.js';
import { ConfigError } from '../errors.js';

/** An upstream's `tls` section as written: file paths, read by loadBackendTls. */
export interface BackendTlsConfig {
  /** PEM file of the CAs that sign the backends' certificates; replaces the default roots. */
  readonly ca?: string | undefined;
  /** Name sent as SNI and checked in the backend's certificate instead of the URL's hostname. */
  readonly servername?: string | undefined;
  /** PEM client certificate and key (mTLS); both or neither. */
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly insecureSkipVerify?: boolean | undefined;
}

/** TLS settings towards https backends, files read: part of the pool settings compared on reload. */
export interface BackendTlsOptions {
  /** PEM text of the trusted CAs; null: Node's default roots. */
  readonly ca: string | null;
  /** PEM client certificate and key for mTLS; null: none. */
  readonly cert: string | null;
  readonly key: string | null;
  /** SNI and certificate name; null: the backend URL's hostname (for an IP, no SNI and the IP is checked). */
  readonly servername: string | null;
  /** Verify the certificate chain and name; false only with insecureSkipVerify. */
  readonly verify: boolean;
}

/** Verification on, default roots, names from the backend URLs. */
export const defaultBackendTls: BackendTlsOptions = { ca: null, cert: null, key: null, servername: null, verify: true };

export function sameBackendTls(a: BackendTlsOptions, b: BackendTlsOptions): boolean {
  return a.ca === b.ca && a.cert === b.cert && a.key === b.key && a.servername === b.servername && a.verify === b.verify;
}

/** A ConfigError whose message starts with the field (`ca`, `cert`, …) it is about. */
export class BackendTlsError extends ConfigError {
  readonly field: keyof BackendTlsConfig;
  readonly detail: string;
  constructor(field: keyof BackendTlsConfig, detail: string, options?: { cause?: unknown }) {
    super(`${field}: ${detail}`, options);
    this.field = field;
    this.detail = detail;
  }
}

function readPem(field: 'ca' | 'cert' | 'key', file: string): string {
  try {
    return readPemFile(file);
  } catch (err) {
    throw new BackendTlsError(field, (err as Error).message, { cause: err });
  }
}

/**
 * Reads and checks the files of an upstream's `tls` section (at load and on every reload, so
 * rotated files are picked up). Throws a BackendTlsError naming the field and the file.
 */
export function loadBackendTls(config: BackendTlsConfig | undefined): BackendTlsOptions {
  if (config === undefined) return defaultBackendTls;
  const servername = config.servername ?? null;
  // RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in HostName".
  if (servername !== null && net.isIP(servername) !== 0) {
    throw new BackendTlsError('servername', `"${servername}" is an IP address; SNI takes host names only (RFC 6066 §3). Leave servername out to check the certificate against the backend's IP`);
  }
  if ((config.cert === undefined) !== (config.key === undefined)) {
    const given = config.cert === undefined ? 'key' : 'cert';
    throw new BackendTlsError(given, `${given} without ${given === 'cert' ? 'key' : 'cert'}: a client certificate needs both`);
  }
  const ca = config.ca === undefined ? null : readPem('ca', config.ca);
  const cert = config.cert === undefined ? null : readPem('cert', config.cert);
  const key = config.key === undefined ? null : readPem('key', config.key);
  // OpenSSL's own parse: a broken PEM block or a key that is not the certificate's fails here, not at the first request.
  const tried = (field: 'ca' | 'cert' | 'key', file: string | undefined, options: tls.SecureContextOptions): void => {
    try {
      tls.createSecureContext(options);
    } catch (err) {
      const reason = String((err as Error).message).replace(/^error:[0-9A-F]+:[^:]*:[^:]*:/, '');
      throw new BackendTlsError(field, `"${file}" cannot be used: ${reason}`, { cause: err });
    }
  };
  if (ca !== null) tried('ca', config.ca, { ca });
  if (cert !== null && key !== null) {
    tried('key', config.key, { key });
    tried('cert', config.cert, { cert, key });
  }
  return { ca, cert, key, servername, verify: config.insecureSkipVerify !== true };
}

/** What tls.connect gets for one https backend (a subset of tls.ConnectionOptions). */
export interface BackendTlsConnectOptions {
  readonly rejectUnauthorized: boolean;
  readonly ALPNProtocols: readonly string[];
  /** SNI and the name checked in the certificate; absent for an IP backend without a configured name. */
  readonly servername?: string;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/**
 * Options for tls.connect to one backend. The server name comes from the backend, never from a
 * request: the configured servername, else the URL's hostname; an IP literal sends no SNI
 * (RFC 6066 §3) and Node then checks the certificate against the IP (an IP SAN). `h2` offers
 * HTTP/2 before HTTP/1.1 by ALPN.
 */
export function backendTlsConnectOptions(hostname: string, options: BackendTlsOptions, h2 = false): BackendTlsConnectOptions {
  const servername = options.servername ?? (net.isIP(hostname) === 0 ? hostname : null);
  return {
    rejectUnauthorized: options.verify,
    ALPNProtocols: h2 ? ['h2', 'http/1.1'] : ['http/1.1'],
    ...(servername === null ? {} : { servername }),
    ...(options.ca === null ? {} : { ca: options.ca }),
    ...(options.cert === null || options.key === null ? {} : { cert: options.cert, key: options.key }),
  };
}
