import http2 from 'node:http2';
import type { TestContext } from 'node:test';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { startBackend, type Handler, type TestBackend } from '../helpers/servers.js';
import type { IssuedCert, TestCa } from '../helpers/tls.js';
import type { ConfigInput } from '../../src/index.js';

/** What the HTTP/2 tests share: a Switchyard with one listener in front of one node:http backend. */

export type ListenerInput = NonNullable<ConfigInput['listeners']>[number];

export interface H2Setup {
  readonly lb: Awaited<ReturnType<typeof startConfigured>>;
  readonly backend: TestBackend;
  readonly port: number;
  readonly cleanup: (fn: () => unknown) => void;
}

/** `cert`: a TLS listener (HTTP/2 by ALPN); none: cleartext (add `h2c: true` in `listener`). */
export async function startH2(t: TestContext, options: { cert?: IssuedCert; listener?: Partial<ListenerInput>; handler?: Handler; extra?: Partial<ConfigInput> } = {}): Promise<H2Setup> {
  const cleanup = cleanupFor(t);
  const backend = await startBackend('web', options.handler);
  cleanup(() => backend.close());
  const tls = options.cert === undefined ? {} : { tls: { certificates: [{ cert: options.cert.certFile, key: options.cert.keyFile }] } };
  const listener: ListenerInput = { host: '127.0.0.1', port: 0, ...tls, ...options.listener };
  const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url] } }, { listeners: [listener], log: { access: true }, ...options.extra }) });
  cleanup(() => lb.close());
  return { lb, backend, port: lb.address.port, cleanup };
}

/** An HTTP/2 client session: h2 over TLS trusting `ca`, or h2c with prior knowledge. */
export async function connectH2(t: TestContext, port: number, ca?: TestCa): Promise<http2.ClientHttp2Session> {
  const session = ca === undefined ? http2.connect(`http://127.0.0.1:${port}`) : http2.connect(`https://localhost:${port}`, { ca: ca.caPem, host: '127.0.0.1', servername: 'localhost' });
  session.on('error', () => {});
  t.after(() => {
    if (!session.destroyed) session.destroy();
  });
  // Connected, and the server's SETTINGS read (remoteSettings).
  await new Promise<void>((resolve, reject) => {
    session.once('remoteSettings', () => resolve());
    session.once('error', reject);
  });
  return session;
}

export interface H2Answer {
  readonly status: number;
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: string;
  /** RST_STREAM code when the stream was reset instead (0: answered). */
  readonly rstCode: number;
}

/** One request on `session`; resolves with the answer or the stream's reset code, within `timeoutMs`. */
export function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | string, timeoutMs = 10_000): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const timer = setTimeout(() => {
      stream.destroy();
      reject(new Error(`no answer to ${String(headers[':path'])} within ${timeoutMs} ms`));
    }, timeoutMs);
    let status = 0;
    let responseHeaders: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      responseHeaders = h;
      status = Number(h[':status']);
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', () => {});
    stream.on('close', () => {
      clearTimeout(timer);
      resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks).toString('utf8'), rstCode: stream.rstCode ?? 0 });
    });
    if (body !== undefined) stream.end(body);
  });
}
