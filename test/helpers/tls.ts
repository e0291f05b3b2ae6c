import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import type { Handler } from './servers.js';

const run = promisify(execFile);

/** A certificate and its key, as files in the CA's directory and as PEM text. */
export interface IssuedCert {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
}

/** A throwaway certificate authority in a temp directory; `remove()` deletes every file it made. */
export interface TestCa {
  readonly dir: string;
  /** The CA certificate (PEM) as a file and as text: what clients trust. */
  readonly caFile: string;
  readonly caPem: string;
  /**
   * Issues a certificate signed by this CA. `sans` are subjectAltName entries as openssl writes
   * them: `DNS:localhost`, `IP:127.0.0.1`. Usable for servers and clients (mTLS).
   */
  issue(name: string, sans: readonly string[], options?: { days?: number }): Promise<IssuedCert>;
  remove(): Promise<void>;
}

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  await run('openssl', args, { cwd: dir, timeout: 30_000 });
}

// P-256 keys: generated in milliseconds, unlike RSA.
const keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Makes a CA with the `openssl` command. Remove it with `remove()` (cleanupFor). */
export async function makeCa(commonName = 'Switchyard Test CA'): Promise<TestCa> {
  const dir = await mkdtemp(path.join(tmpdir(), 'swy-tls-'));
  try {
    await openssl(dir, ['req', '-x509', ...keyArgs, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', `/CN=${commonName}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const caFile = path.join(dir, 'ca.pem');
  const caPem = await readFile(caFile, 'utf8');
  let serial = 0;
  return {
    dir,
    caFile,
    caPem,
    async issue(name, sans, options = {}) {
      const base = `${name.replace(/[^A-Za-z0-9.-]/g, '_')}-${++serial}`;
      await openssl(dir, ['req', ...keyArgs, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${name}`]);
      const ext = [`subjectAltName=${sans.join(',')}`, 'basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth,clientAuth'].join('\n');
      await writeFile(path.join(dir, `${base}.ext`), ext + '\n');
      await openssl(dir, ['x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(1000 + serial),
        '-days', String(options.days ?? 2), '-extfile', `${base}.ext`, '-out', `${base}.pem`]);
      const certFile = path.join(dir, `${base}.pem`);
      const keyFile = path.join(dir, `${base}.key`);
      return { certFile, keyFile, cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') };
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** The certificates the TLS tests share: a trusted CA, another CA, and what they issued. */
export interface TestPki {
  readonly ca: TestCa;
  readonly otherCa: TestCa;
  /** SAN DNS:localhost and IP:127.0.0.1. */
  readonly local: IssuedCert;
  /** SAN DNS:backend.test only. */
  readonly named: IssuedCert;
  /** A client certificate for mTLS. */
  readonly client: IssuedCert;
  /** localhost and 127.0.0.1, signed by the CA the proxy does not trust. */
  readonly stranger: IssuedCert;
  remove(): Promise<void>;
}

export async function makeTestPki(): Promise<TestPki> {
  const ca = await makeCa();
  const otherCa = await makeCa('Unknown CA');
  const localSans = ['DNS:localhost', 'IP:127.0.0.1'];
  return {
    ca,
    otherCa,
    local: await ca.issue('localhost', localSans),
    named: await ca.issue('backend.test', ['DNS:backend.test']),
    client: await ca.issue('switchyard-client', ['DNS:switchyard-client']),
    stranger: await otherCa.issue('localhost', localSans),
    remove: async () => {
      await ca.remove();
      await otherCa.remove();
    },
  };
}

/** A real HTTPS backend on 127.0.0.1 with an ephemeral port. */
export interface TlsBackend {
  readonly server: https.Server;
  readonly port: number;
  /** `https://127.0.0.1:PORT` */
  readonly url: string;
  /** Completed TLS handshakes, in order: the SNI the client sent (false when none) and its certificate's CN when it gave one. */
  readonly handshakes: { servername: string | false | null; clientCn: string | null }[];
  /** Host headers of the requests seen. */
  readonly hosts: string[];
  /** For each request seen, the index in `handshakes` of the connection it came on. */
  readonly requestConnections: number[];
  /** The handshakes of the connections that carried requests (a TCP health check's carry none), in order. */
  servingHandshakes(): TlsBackend['handshakes'];
  close(): Promise<void>;
}

export interface TlsBackendOptions {
  /** Ask for a client certificate and refuse clients without one this CA signed (mTLS). */
  readonly clientCa?: string;
  readonly handler?: Handler;
  /** Port to listen on; default 0, a free one. */
  readonly port?: number;
}

/** Starts an HTTPS backend with `cert`; by default it answers 200 `name`. */
export async function startTlsBackend(name: string, cert: IssuedCert, options: TlsBackendOptions = {}): Promise<TlsBackend> {
  const handshakes: TlsBackend['handshakes'] = [];
  const hosts: string[] = [];
  const requestConnections: number[] = [];
  const connectionIndex = new WeakMap<object, number>();
  const server = https.createServer(
    {
      cert: cert.cert,
      key: cert.key,
      ...(options.clientCa === undefined ? {} : { ca: options.clientCa, requestCert: true, rejectUnauthorized: true }),
    },
    (req, res) => {
      hosts.push(req.headers.host ?? '');
      requestConnections.push(connectionIndex.get(req.socket) ?? -1);
      if (options.handler !== undefined) return options.handler(req, res);
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'x-backend': name, 'content-type': 'text/plain' });
        res.end(name);
      });
    },
  );
  server.on('secureConnection', (socket: TLSSocket) => {
    const peer = socket.getPeerCertificate();
    const cn = peer?.subject?.CN;
    connectionIndex.set(socket, handshakes.length);
    handshakes.push({ servername: socket.servername, clientCn: cn === undefined ? null : String(cn) });
  });
  // A client that gives up mid-handshake (a failed verification) is not the test's business.
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `https://127.0.0.1:${port}`,
    handshakes,
    hosts,
    requestConnections,
    servingHandshakes: () => [...new Set(requestConnections)].map((i) => handshakes[i] ?? { servername: null, clientCn: 'unknown connection' }),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
