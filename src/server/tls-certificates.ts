import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { readPemFile } from '../pem-file.js';
import { ConfigError } from '../errors.js';

/** The certificates of an HTTPS listener: read, checked, and matched to SNI names. */

/** One `listeners[].tls.certificates` entry as written: PEM file paths. */
export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
}

/** A listener's `tls` section as validated. */
export interface ListenerTlsConfig {
  readonly certificates: readonly CertificateFiles[];
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
}

/** A certificate read and parsed: its files, PEM text, the DNS names it serves and its expiry. */
export interface LoadedCertificate {
  readonly files: CertificateFiles;
  readonly cert: string;
  readonly key: string;
  /** subjectAltName DNS entries, lower case (`*.example.com` for a wildcard); the CN when there are none. */
  readonly names: readonly string[];
  /** notAfter, in ms since the epoch. */
  readonly expiresAtMs: number;
}

/** A ConfigError about one file of `certificates[index]`; the message starts with the field. */
export class ListenerTlsError extends ConfigError {
  readonly index: number;
  readonly field: keyof CertificateFiles;
  readonly detail: string;
  constructor(index: number, field: keyof CertificateFiles, detail: string, options?: { cause?: unknown }) {
    super(`${field}: ${detail}`, options);
    this.index = index;
    this.field = field;
    this.detail = detail;
  }
}

function readPem(index: number, field: keyof CertificateFiles, file: string): string {
  try {
    return readPemFile(file);
  } catch (err) {
    throw new ListenerTlsError(index, field, (err as Error).message, { cause: err });
  }
}

/** OpenSSL's reason without its `error:0A00…:SSL routines:…:` prefix. */
function opensslReason(err: unknown): string {
  return String((err as Error).message).replace(/^error:[0-9A-F]+:[^:]*:[^:]*:/, '');
}

/** The DNS names a certificate serves: its subjectAltName DNS entries, else its CN (RFC 6125 §6.4.4). */
function namesOf(x509: X509Certificate): string[] {
  const sans = (x509.subjectAltName ?? '').split(', ').filter((entry) => entry.startsWith('DNS:')).map((entry) => entry.slice(4).toLowerCase());
  if (sans.length > 0) return sans;
  const cn = /^CN=(.*)$/m.exec(x509.subject)?.[1];
  return cn === undefined ? [] : [cn.toLowerCase()];
}

/**
 * Reads one certificate and its key and checks them with OpenSSL: missing, unreadable, not PEM,
 * broken, or a key that is not the certificate's throws a ListenerTlsError naming the file.
 */
export function loadCertificate(files: CertificateFiles, index: number): LoadedCertificate {
  const cert = readPem(index, 'cert', files.cert);
  const key = readPem(index, 'key', files.key);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new ListenerTlsError(index, 'cert', `"${files.cert}" is not a certificate: ${opensslReason(err)}`, { cause: err });
  }
  try {
    tls.createSecureContext({ key });
  } catch (err) {
    throw new ListenerTlsError(index, 'key', `"${files.key}" is not a private key: ${opensslReason(err)}`, { cause: err });
  }
  try {
    tls.createSecureContext({ cert, key });
  } catch (err) {
    throw new ListenerTlsError(index, 'key', `"${files.key}" does not match the certificate "${files.cert}": ${opensslReason(err)}`, { cause: err });
  }
  return { files, cert, key, names: namesOf(x509), expiresAtMs: Date.parse(x509.validTo) };
}

export function loadCertificates(config: ListenerTlsConfig): LoadedCertificate[] {
  return config.certificates.map((files, index) => loadCertificate(files, index));
}

/** Whether `pattern` (a name or `*.suffix`, lower case) covers `name`; a wildcard covers one label (RFC 6125 §6.4.3). */
export function nameMatches(pattern: string, name: string): boolean {
  if (pattern === name) return true;
  if (!pattern.startsWith('*.')) return false;
  const dot = name.indexOf('.');
  return dot > 0 && name.slice(dot) === pattern.slice(1);
}

/** The index of the certificate for an SNI name: an exact name first, then a wildcard, else 0 (the default). */
export function certificateFor(certificates: readonly LoadedCertificate[], servername: string): number {
  const name = servername.toLowerCase();
  let wildcard = -1;
  for (let i = 0; i < certificates.length; i++) {
    const names = (certificates[i] as LoadedCertificate).names;
    for (let j = 0; j < names.length; j++) {
      const pattern = names[j] as string;
      if (pattern === name) return i;
      if (wildcard === -1 && nameMatches(pattern, name)) wildcard = i;
    }
  }
  return wildcard === -1 ? 0 : wildcard;
}
